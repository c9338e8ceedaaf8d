/** See code-cache.mjs. */
export function composeHook(bundle: string): Promise<{ text: string; hash: string }>;
