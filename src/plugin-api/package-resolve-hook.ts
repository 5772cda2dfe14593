// The module resolve hook behind package-resolve.ts on Node versions without module.registerHooks:
// run by Node's loader thread (module.register), it answers the bare specifiers `nqqueue` and
// `nqqueue/testing` with the host's own files and leaves everything else to Node.

type Next = (specifier: string, context: unknown) => Promise<{ url: string }>;

let targets: Record<string, string> = {};

export async function initialize(data: { targets: Record<string, string> }): Promise<void> {
  targets = data.targets;
}

export async function resolve(specifier: string, context: unknown, next: Next): Promise<{ url: string; shortCircuit?: boolean }> {
  if (Object.hasOwn(targets, specifier)) return { url: targets[specifier]!, shortCircuit: true };
  return next(specifier, context);
}
