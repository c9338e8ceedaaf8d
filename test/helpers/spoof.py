#!/usr/bin/python3
"""Frames a misbehaving guest might send, crafted with scapy, for the vif-bridge suites.

    /usr/bin/python3 spoof.py IFACE KIND [key=value ...]

Run inside a guest namespace (Debian's python3: the python3 on PATH lacks scapy). Every frame
goes out of IFACE as is, through a raw socket: whatever the guest's own stack would do is bypassed.

KIND (what is sent; keys in brackets, defaults from IFACE: its MAC, first IPv4, link-local):
  udp            Ether/IPv4/UDP               [smac dmac src dst sport dport tag]
  udp6           Ether/IPv6/UDP               [smac dmac src dst sport dport tag]
  arp-reply      ARP is-at, unicast to dmac   [smac dmac hwsrc psrc pdst; dmac/psrc/pdst may be
                 comma-separated lists, one reply each; hwtype ptype hwlen plen: the header's
                 types and lengths, e.g. hwtype=6 (IEEE 802), with addresses sized to match]
  arp-request    ARP who-has, broadcast       [smac hwsrc psrc pdst]
  dhcp-offer     DHCP server OFFER, udp 67->68 to broadcast  [smac src yiaddr sport]
  dhcp-discover  DHCP client DISCOVER from 0.0.0.0, 68->67   [smac]
  dhcp6-advertise DHCPv6 server ADVERTISE, udp 547->546      [smac src sport]
  ra             ICMPv6 router advertisement, hop limit 255, to ff02::1 (prefix 2001:db8:bad::/64)
                 [smac src hbh=yes: behind a hop-by-hop extension header]
  redirect       ICMPv6 redirect, hop limit 255 [smac src dst dmac]
                 ra and redirect with frag=first: in two fragments, the ICMPv6 header in the
                 first; frag=later: behind a destination-options header, the ICMPv6 header in
                 the second fragment (the first carries no ICMPv6 header at all)
  na             unsolicited neighbour advertisement (override, hop limit 255) with a target
                 link-layer address option  [smac src tgt dst dmac lladdr]
  ethertype      a frame of an unassigned ethertype (0x88b5) [smac dmac etype: another, in hex (88a2: AoE)]
  none           nothing (with sentinel=yes: the sentinel only)
Common keys: tags=TPID:VID[,TPID:VID] puts each spoofed frame in one or two VLAN tags, outer
first (e.g. tags=8100:100, tags=88a8:10,8100:20); count=N (each spoofed frame N times, default 2); sentinel=yes appends a legitimate
UDP broadcast (own MAC, own IPv4, port 9 -> 9, payload "sentinel") after them; sentinel6=ADDR
also one from IPv6 ADDR to ff02::1, port 9 -> 9.
"""
import struct
import sys

# The layers one by one, not scapy.all: a third of the start-up time, and these run a lot.
from scapy.arch import get_if_addr, get_if_hwaddr, in6_getifaddr
from scapy.config import conf
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6_Advertise, DHCP6OptServerId, DUID_LL
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (
    ICMPv6ND_NA, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6NDOptDstLLAddr, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr,
    IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, PadN,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw
from scapy.sendrecv import sendp
from scapy.utils import mac2str

BCAST = "ff:ff:ff:ff:ff:ff"


def fragmented(ether, ip6, icmp, where):
    """ip6/icmp as two fragments: 'first' splits the ICMPv6 message after its first 8 bytes;
    'later' puts an 8-byte destination-options header first, alone in the first fragment."""
    if where == "later":
        whole = ip6 / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0\0\0\0")]) / icmp
        first_nh = 60
    else:
        whole = ip6 / icmp
        first_nh = 58
    body = bytes(whole[IPv6].payload)  # checksums computed over the whole message
    head = IPv6(src=ip6.src, dst=ip6.dst, hlim=ip6.hlim)
    return [ether / head / IPv6ExtHdrFragment(nh=first_nh, offset=0, m=1, id=0x1612) / Raw(body[:8]),
            ether / head / IPv6ExtHdrFragment(nh=first_nh, offset=1, m=0, id=0x1612) / Raw(body[8:])]


def tagged(frame, tags):
    """frame inside the VLAN tags 'TPID:VID[,TPID:VID]', outer first."""
    out = Ether(src=frame.src, dst=frame.dst)
    for t in tags.split(","):
        tpid, vid = t.split(":")
        out = out / (Dot1AD(vlan=int(vid)) if tpid.lower() == "88a8" else Dot1Q(vlan=int(vid)))
    return out / frame.payload


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    iface, kind = argv[1], argv[2]
    opt = {}
    for a in argv[3:]:
        k, sep, v = a.partition("=")
        if not sep:
            sys.stderr.write(f"spoof.py: bad argument {a!r}: expected key=value\n")
            return 2
        opt[k] = v
    conf.verb = 0
    mymac = get_if_hwaddr(iface)
    myip = get_if_addr(iface)
    ll = next((a[0] for a in in6_getifaddr() if a[2] == iface and a[0].startswith("fe80")), "fe80::1")
    smac = opt.get("smac", mymac)
    tag = opt.get("tag", "spoof").encode()
    frames = []
    if kind == "udp":
        frames.append(Ether(src=smac, dst=opt.get("dmac", BCAST)) /
                      IP(src=opt.get("src", myip), dst=opt.get("dst", "255.255.255.255")) /
                      UDP(sport=int(opt.get("sport", 4000)), dport=int(opt.get("dport", 4000))) / Raw(tag))
    elif kind == "udp6":
        frames.append(Ether(src=smac, dst=opt.get("dmac", "33:33:00:00:00:01")) /
                      IPv6(src=opt.get("src", ll), dst=opt.get("dst", "ff02::1")) /
                      UDP(sport=int(opt.get("sport", 4000)), dport=int(opt.get("dport", 4000))) / Raw(tag))
    elif kind == "arp-reply":
        # dmac, psrc and pdst may be comma-separated lists: one reply per position.
        shaped = any(k in opt for k in ("hwtype", "ptype", "hwlen", "plen"))
        for dmac, psrc, pdst in zip(opt["dmac"].split(","), opt["psrc"].split(","), opt["pdst"].split(",")):
            if shaped:
                # Built by hand: scapy sizes the addresses by the types. MAC and IPv4 address as
                # bytes, cut or zero-padded to the lengths the header states.
                ht, pt = int(opt.get("hwtype", "1"), 0), int(opt.get("ptype", "0x0800"), 0)
                hl, pl = int(opt.get("hwlen", "6")), int(opt.get("plen", "4"))
                hw = lambda m: (mac2str(m) + bytes(16))[:hl]
                pa = lambda a: (bytes(map(int, a.split("."))) + bytes(16))[:pl]
                body = struct.pack("!HHBBH", ht, pt, hl, pl, 2) + hw(opt.get("hwsrc", smac)) + pa(psrc) + hw(dmac) + pa(pdst)
                frames.append(Ether(src=smac, dst=dmac, type=0x0806) / Raw(body))
            else:
                frames.append(Ether(src=smac, dst=dmac) /
                              ARP(op=2, hwsrc=opt.get("hwsrc", smac), psrc=psrc, hwdst=dmac, pdst=pdst))
    elif kind == "arp-request":
        frames.append(Ether(src=smac, dst=BCAST) /
                      ARP(op=1, hwsrc=opt.get("hwsrc", smac), psrc=opt["psrc"], hwdst="00:00:00:00:00:00",
                          pdst=opt["pdst"]))
    elif kind == "dhcp-offer":
        frames.append(Ether(src=smac, dst=BCAST) /
                      IP(src=opt.get("src", myip), dst="255.255.255.255") / UDP(sport=int(opt.get("sport", 67)), dport=68) /
                      BOOTP(op=2, xid=0x1234, yiaddr=opt.get("yiaddr", "192.0.2.200"), siaddr=myip,
                            chaddr=mac2str(opt.get("chaddr", "02:00:00:00:0c:01"))) /
                      DHCP(options=[("message-type", "offer"), ("server_id", myip), ("router", myip),
                                    ("subnet_mask", "255.255.255.0"), ("lease_time", 600), "end"]))
    elif kind == "dhcp-discover":
        frames.append(Ether(src=smac, dst=BCAST) /
                      IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) /
                      BOOTP(op=1, xid=0x4321, chaddr=mac2str(smac)) /
                      DHCP(options=[("message-type", "discover"), "end"]))
    elif kind == "dhcp6-advertise":
        frames.append(Ether(src=smac, dst="33:33:00:01:00:02") /
                      IPv6(src=opt.get("src", ll), dst="ff02::1:2") / UDP(sport=int(opt.get("sport", 547)), dport=546) /
                      DHCP6_Advertise(trid=0x77) / DHCP6OptServerId(duid=DUID_LL(lladdr=smac)))
    elif kind == "ra":
        ra = (ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=smac) /
              ICMPv6NDOptPrefixInfo(prefix="2001:db8:bad::", prefixlen=64, L=1, A=1,
                                    validlifetime=3600, preferredlifetime=1800))
        ip6 = IPv6(src=opt.get("src", ll), dst="ff02::1", hlim=255)
        ether = Ether(src=smac, dst="33:33:00:00:00:01")
        if "frag" in opt:
            frames.extend(fragmented(ether, ip6, ra, opt["frag"]))
        else:
            if opt.get("hbh") == "yes":
                ip6 = ip6 / IPv6ExtHdrHopByHop()
            frames.append(ether / ip6 / ra)
    elif kind == "redirect":
        ether = Ether(src=smac, dst=opt["dmac"])
        ip6 = IPv6(src=opt.get("src", ll), dst=opt["dst"], hlim=255)
        rd = ICMPv6ND_Redirect(tgt=opt.get("tgt", ll), dst=opt.get("target", "2001:db8:1::1"))
        if "frag" in opt:
            frames.extend(fragmented(ether, ip6, rd, opt["frag"]))
        else:
            frames.append(ether / ip6 / rd)
    elif kind == "na":
        frames.append(Ether(src=smac, dst=opt.get("dmac", "33:33:00:00:00:01")) /
                      IPv6(src=opt.get("src", ll), dst=opt.get("dst", "ff02::1"), hlim=255) /
                      ICMPv6ND_NA(R=0, S=0, O=1, tgt=opt["tgt"]) / ICMPv6NDOptDstLLAddr(lladdr=opt.get("lladdr", smac)))
    elif kind == "ethertype":
        frames.append(Ether(src=smac, dst=opt.get("dmac", BCAST), type=int(opt.get("etype", "88b5"), 16)) / Raw(tag * 4))
    elif kind == "none":
        pass
    else:
        sys.stderr.write(f"spoof.py: unknown kind {kind!r}\n")
        return 2
    if "tags" in opt:
        frames = [tagged(f, opt["tags"]) for f in frames]
    frames = frames * int(opt.get("count", 2))
    if opt.get("sentinel") == "yes":
        frames.append(Ether(src=mymac, dst=BCAST) / IP(src=myip, dst="255.255.255.255") /
                      UDP(sport=9, dport=9) / Raw(b"sentinel"))
    if "sentinel6" in opt:
        frames.append(Ether(src=mymac, dst="33:33:00:00:00:01") / IPv6(src=opt["sentinel6"], dst="ff02::1") /
                      UDP(sport=9, dport=9) / Raw(b"sentinel6"))
    if frames:
        sendp(frames, iface=iface, inter=0.02)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
