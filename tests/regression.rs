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

/// With a worker blocked in a slow engine call, a second SIGTERM/SIGINT during the graceful
/// stop was never read (the loop had ended and the stop waited for the worker): TERM TERM INT
/// exited after 27 s with code 0. The second signal must exit 130 at once.
#[test]
fn a_second_signal_waited_for_a_blocked_engine_call() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    // An engine that accepts connections and never answers.
    let engine = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", engine.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = engine.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let mut args = crate::support::offline_node_args();
    let i = args.iter().position(|a| a == "--l2").unwrap();
    args[i + 1] = url;
    let mut child = Command::new(crate::support::bin())
        .args(args)
        .args(["--rpc.port", "0", "--l2.engine-rpc-timeout", "60s", "--log.level", "debug"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (log, started) = crate::support::capture_until(child.stderr.take().unwrap(), "starting rollup node");
    assert!(started.recv_timeout(Duration::from_secs(20)).is_ok(), "node did not start");
    let pid = child.id().to_string();
    let kill = |sig: &str| Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(kill("-TERM").success());
    // The graceful stop is now waiting on the engine worker.
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the blocked worker holds the graceful stop");
    assert!(kill("-TERM").success());
    let sent = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(sent.elapsed() < Duration::from_secs(1), "no exit within 1 s of the second signal");
        std::thread::sleep(Duration::from_millis(10));
    };
    let log = log.join().unwrap();
    assert_eq!(code, Some(130), "{log}");
}
