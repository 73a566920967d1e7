//! Regression tests: each is named after the defect it pins, and says how the defect showed.

use crate::sim::derivation::Sim;

/// With the engine down, an idle pipeline reset the step backoff, so idle -> forkchoice retry
/// -> failure -> step ran again at once: a CPU spin on a board whose execution engine is down
/// (here the simulated node never settled at one instant). The backoff must hold while the
/// engine fails, and the node must recover when it is back.
#[test]
fn idle_pipeline_reset_the_step_backoff_while_the_engine_was_down() {
    // A short sequencing window: empty epochs expire, so there are blocks to derive.
    let mut sim = Sim::new(4);
    sim.engine_down = true;
    // Ten L1 blocks (120 s) arrive while every engine call fails.
    sim.l1_blocks(10);
    let calls = sim.engine_calls;
    assert!(calls > 0, "the node keeps retrying");
    assert!(calls <= 120, "{calls} engine calls in 120 s: retries without backoff");
    assert_eq!(sim.status().safe_l2.number, 0);
    sim.engine_down = false;
    sim.l1_blocks(2);
    assert!(sim.status().safe_l2.number > 0, "the node recovers once the engine is back");
}
