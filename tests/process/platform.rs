//! The systemd side: the unit passes `systemd-analyze verify`, `install.sh` installs, re-runs
//! and uninstalls idempotently, and the node speaks the notify protocol (READY, STATUS,
//! WATCHDOG, STOPPING) to a `NOTIFY_SOCKET` the test listens on.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("op-lite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{tool} is required under CI=true");
        eprintln!("skipped: {tool} not found");
    }
    found
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        return;
    }
    let dir = tmpdir("unit");
    let unit = std::fs::read_to_string(root().join("platform/systemd/op-lite.service")).unwrap();
    for needle in [
        "Type=notify",
        "RestartPreventExitStatus=2 3",
        "ProtectSystem=strict",
        "SystemCallFilter=@system-service",
        "MemoryMax=",
        "EnvironmentFile=/etc/op-lite/op-lite.env",
    ] {
        assert!(unit.contains(needle), "unit lacks {needle}");
    }
    // Verify with ExecStart pointing at the binary this test run built.
    let unit = unit.replace("/usr/local/bin/op-lite", bin().to_str().unwrap());
    std::fs::write(dir.join("op-lite.service"), unit).unwrap();
    let out =
        Command::new("systemd-analyze").arg("verify").arg(dir.join("op-lite.service")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
}

#[test]
fn install_script_is_idempotent_and_uninstalls() {
    let dest = tmpdir("install");
    let run = |args: &[&str]| {
        let out = Command::new("sh")
            .arg(root().join("platform/install.sh"))
            .args(args)
            .env("DESTDIR", &dest)
            .env("PREFIX", "/usr/local")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let b = bin();
    let first = run(&[b.to_str().unwrap()]);
    assert!(first.contains("wrote"), "{first}");
    let exe = dest.join("usr/local/bin/op-lite");
    let unit = dest.join("etc/systemd/system/op-lite.service");
    let env = dest.join("etc/op-lite/op-lite.env");
    for p in [&exe, &unit, &env] {
        assert!(p.exists(), "{}", p.display());
    }
    // A second run keeps the operator's configuration.
    std::fs::write(&env, "OP_NODE_NETWORK=op-mainnet\n").unwrap();
    assert!(run(&[b.to_str().unwrap()]).contains("kept existing"));
    assert_eq!(std::fs::read_to_string(&env).unwrap(), "OP_NODE_NETWORK=op-mainnet\n");
    // The installed binary runs.
    let v = Command::new(&exe).arg("--version").output().unwrap();
    assert!(v.status.success());
    run(&["--uninstall"]);
    assert!(!exe.exists() && !unit.exists() && env.exists());
    run(&["--uninstall"]);
}

fn recv_all(sock: &UnixDatagram, until: Instant, stop: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while Instant::now() < until && !stop(&got) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[test]
fn notify_socket_gets_ready_status_watchdog_and_stopping() {
    let dir = tmpdir("notify");
    let path: &Path = &dir.join("notify.sock");
    let sock = UnixDatagram::bind(path).unwrap();
    let mut child = Command::new(bin())
        .args(["devnet", "--speed", "20", "--rpc.port", "0"])
        .env("NOTIFY_SOCKET", path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let msgs = recv_all(&sock, Instant::now() + Duration::from_secs(30), |m| {
        m.iter().any(|x| x.starts_with("READY=1"))
            && m.iter().filter(|x| *x == "WATCHDOG=1").count() >= 5
            && m.iter().any(|x| x.starts_with("STATUS=") && !x.contains("safe #0 "))
    });
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let rest =
        recv_all(&sock, Instant::now() + Duration::from_secs(15), |m| m.iter().any(|x| x == "STOPPING=1"));
    let code = child.wait().unwrap().code();
    let ready = msgs.iter().find(|m| m.starts_with("READY=1")).expect("READY=1 sent");
    assert!(ready.contains("\nSTATUS=unsafe #"), "{ready}");
    assert!(msgs.iter().filter(|m| *m == "WATCHDOG=1").count() >= 5, "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("STATUS=unsafe #")), "{msgs:?}");
    assert!(rest.iter().any(|m| m == "STOPPING=1"), "{rest:?}");
    assert_eq!(code, Some(0));
}
