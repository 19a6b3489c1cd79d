//! RunConfig: the boundary between the front ends (operator, CLI) and the proxy, and the
//! one validation that the admission webhook, the proxy at start-up and `thv validate`
//! all call. Built by its own issue; the crate exists so the workspace layout is final.
