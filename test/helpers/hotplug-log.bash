# shellcheck shell=bash
# Sourced by guest.bash and topology.bash: what a hook's log (XEN_NETHOOKS_LOG, JSON lines) says
# it ran, for tests that assert which way a step went (a fallback taken, one transaction or three).
#
#   logged_cmds COMMAND STEP_RE [LOG]   the programs (argv without the stdin script) run by the
#                                       steps whose id matches STEP_RE, in the last call of
#                                       COMMAND (online, offline, ...) in LOG (default
#                                       $XEN_NETHOOKS_LOG), one per line, fallbacks included

logged_cmds() {
  node -e '
    const [command, stepRe, file] = process.argv.slice(1);
    const lines = require("fs").readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    // A call ends with "plan done"; its lines are those since the previous call of any command ended.
    const ends = lines.flatMap((l, i) => (l.msg === "plan done" ? [i] : []));
    const last = ends.filter((i) => lines[i].command === command).pop();
    if (last === undefined) process.exit(0);
    const start = (ends.filter((i) => i < last).pop() ?? -1) + 1;
    const re = new RegExp(`^(${stepRe})$`);
    for (const l of lines.slice(start, last)) if (l.command === command && l.cmd && re.test(l.step)) console.log(l.cmd.split(" <<")[0]);
  ' "$1" "$2" "${3:-$XEN_NETHOOKS_LOG}"
}
