// Imported once by a pre-initialized runtime while it waits (index.mjs warm), through the
// handler loader, so that its ES module path is compiled before the function arrives.
export const handler = () => {};
