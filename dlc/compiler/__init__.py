"""From a typed graph to native code: kernels per node, an execution plan, an entry
function that runs them all in one call."""
