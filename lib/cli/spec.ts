/** The declaration of one hook's interface: commands and keys, the single source for parsing and --help. */
import type { OptionType } from './values.ts';

export interface OptionSpec {
  key: string;
  type: OptionType;
  /** The default as the user would write it; omitted when the default is computed (see description). */
  default?: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  description: string;
}

export interface HookSpec {
  name: string;
  summary: string;
  commands: readonly CommandSpec[];
  options: readonly OptionSpec[];
  /** Free text after the key list: examples, files, exit codes. */
  epilog: string;
}
