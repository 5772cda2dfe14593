// The version NQqueue reports (`nqqueue --version`, the trace header, plugin results).
export const VERSION = '0.1.0';
