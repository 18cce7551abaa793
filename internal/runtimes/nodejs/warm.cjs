// Required once by a pre-initialized runtime while it waits (index.mjs warm): nothing else.
module.exports = {};
