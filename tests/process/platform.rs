//! The systemd side: the unit passes `systemd-analyze verify`, `install.sh` installs, re-runs
//! and uninstalls idempotently, `package.sh` builds a Debian package whose maintainer scripts
//! enable the unit without starting it, and the node speaks the notify protocol (READY,
//! STATUS, WATCHDOG, STOPPING) to a `NOTIFY_SOCKET` the test listens on.

use std::os::unix::fs::PermissionsExt;
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

/// Runs a maintainer script (`sh script args`) with `deb-systemd-helper`, `deb-systemd-invoke`
/// and `systemctl` replaced by recorders; returns what they were called with, one call a line.
/// `DISABLED=1` makes `deb-systemd-helper was-enabled` answer no.
fn run_maintainer_script(dir: &Path, script: &Path, args: &[&str], disabled: bool) -> Vec<String> {
    let fake = dir.join("fake-bin");
    let log = dir.join("calls.log");
    std::fs::create_dir_all(&fake).unwrap();
    for tool in ["deb-systemd-helper", "deb-systemd-invoke", "systemctl"] {
        let body = format!(
            "#!/bin/sh\necho \"{tool} $*\" >> '{}'\n\
             [ \"$DISABLED\" = 1 ] && [ \"$2\" = was-enabled ] && exit 1\nexit 0\n",
            log.display()
        );
        let path = fake.join(tool);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _ = std::fs::remove_file(&log);
    let out = Command::new("sh")
        .arg(script)
        .args(args)
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", fake.display()))
        .env("DISABLED", if disabled { "1" } else { "0" })
        .output()
        .unwrap();
    assert!(out.status.success(), "{} {args:?}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[test]
fn debian_package_holds_the_service_and_its_scripts_enable_without_starting() {
    if !have("dpkg-deb") || !have("readelf") {
        return;
    }
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: the test packages this build as amd64");
        return;
    }
    let dir = tmpdir("deb");
    // The test build (stripped by package.sh), uncompressed: the package in well under a second.
    let out = Command::new("bash")
        .arg(root().join("platform/package.sh"))
        .arg("x86_64-unknown-linux-gnu")
        .env("OP_LITE_BINARY", bin())
        .env("OP_LITE_DEB_DIR", &dir)
        .env("OP_LITE_DEB_COMPRESSION", "none")
        .output()
        .unwrap();
    assert!(out.status.success(), "package.sh: {}", String::from_utf8_lossy(&out.stderr));
    let version = env!("CARGO_PKG_VERSION").replacen('-', "~", 1);
    let deb = dir.join(format!("op-lite_{version}_amd64.deb"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), deb.to_str(), "the last line names the package");

    let dpkg_deb = |args: &[&str]| {
        let out = Command::new("dpkg-deb").args(args).output().unwrap();
        assert!(out.status.success(), "dpkg-deb {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let deb_s = deb.to_str().unwrap();

    // Control fields.
    let field = |name: &str| dpkg_deb(&["-f", deb_s, name]).trim().to_owned();
    assert_eq!(field("Package"), "op-lite");
    assert_eq!(field("Version"), version);
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Section"), "net");
    assert_eq!(field("Priority"), "optional");
    assert!(field("Maintainer").ends_with('>'), "{}", field("Maintainer"));
    let depends = field("Depends");
    assert!(depends.starts_with("libc6 (>= 2.") && depends.contains("libgcc-s1 (>= "), "Depends: {depends}");
    assert!(field("Installed-Size").parse::<u64>().unwrap() > 1000);
    assert!(field("Description").starts_with("OP Stack rollup node"));

    // Files: exactly these, with these modes, all root/root; directories 0755.
    let contents = dpkg_deb(&["--contents", deb_s]);
    let mut files = Vec::new();
    for line in contents.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (cols[0], cols[1], *cols.last().unwrap());
        assert_eq!(owner, "root/root", "{line}");
        if mode.starts_with('d') {
            assert_eq!(mode, "drwxr-xr-x", "{line}");
        } else {
            files.push((path.to_owned(), mode.to_owned()));
        }
    }
    files.sort();
    let want = [
        ("./usr/bin/op-lite", "-rwxr-xr-x"),
        ("./lib/systemd/system/op-lite.service", "-rw-r--r--"),
        ("./etc/op-lite/op-lite.env", "-rw-r-----"),
        ("./usr/share/doc/op-lite/copyright", "-rw-r--r--"),
        ("./usr/share/doc/op-lite/changelog.gz", "-rw-r--r--"),
        ("./usr/share/man/man1/op-lite.1.gz", "-rw-r--r--"),
        ("./usr/share/lintian/overrides/op-lite", "-rw-r--r--"),
    ];
    let mut want: Vec<(String, String)> = want.iter().map(|(p, m)| (p.to_string(), m.to_string())).collect();
    want.sort();
    assert_eq!(files, want);

    // Control area: the conffile, md5sums of every file, the scripts.
    let control = dir.join("control");
    dpkg_deb(&["--control", deb_s, control.to_str().unwrap()]);
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(control.join("conffiles")), "/etc/op-lite/op-lite.env\n");
    assert_eq!(read(control.join("md5sums")).lines().count(), want.len());

    // The unit as installed, the docs, and the binary runs.
    let tree = dir.join("tree");
    dpkg_deb(&["-x", deb_s, tree.to_str().unwrap()]);
    let unit = read(tree.join("lib/systemd/system/op-lite.service"));
    assert!(unit.lines().any(|l| l == "ExecStart=/usr/bin/op-lite"), "ExecStart");
    assert!(!unit.contains("ExecStart=/usr/local"));
    assert_eq!(
        unit.replace("/usr/bin/op-lite", "/usr/local/bin/op-lite"),
        read(root().join("platform/systemd/op-lite.service"))
    );
    assert_eq!(read(tree.join("etc/op-lite/op-lite.env")), read(root().join("platform/systemd/op-lite.env")));
    assert!(read(tree.join("usr/share/doc/op-lite/copyright"))
        .starts_with("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"));
    let changelog = Command::new("gzip")
        .arg("-dc")
        .arg(tree.join("usr/share/doc/op-lite/changelog.gz"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&changelog.stdout).starts_with(&format!("op-lite ({version}) ")));
    let v = Command::new(tree.join("usr/bin/op-lite")).arg("--version").output().unwrap();
    assert!(v.status.success() && String::from_utf8_lossy(&v.stdout).starts_with("op-lite version "));

    // Maintainer scripts, with systemd "running" (its runtime directory moved into the test's).
    let running = dir.join("run-systemd-system");
    std::fs::create_dir_all(&running).unwrap();
    let script = |name: &str, systemd: &Path| {
        let text = read(control.join(name)).replace("/run/systemd/system", systemd.to_str().unwrap());
        let path = dir.join(format!("{name}.sh"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let postinst = script("postinst", &running);
    let enable = [
        "deb-systemd-helper unmask op-lite.service",
        "deb-systemd-helper --quiet was-enabled op-lite.service",
        "deb-systemd-helper enable op-lite.service",
        "systemctl --system daemon-reload",
    ];
    // First installation: enabled, never started.
    assert_eq!(run_maintainer_script(&dir, &postinst, &["configure"], false), enable);
    assert_eq!(run_maintainer_script(&dir, &postinst, &["configure", ""], false), enable);
    // Upgrade: restarted only if it was running.
    let mut upgrade = enable.to_vec();
    upgrade.push("deb-systemd-invoke try-restart op-lite.service");
    assert_eq!(run_maintainer_script(&dir, &postinst, &["configure", "0.0.1"], false), upgrade);
    // Disabled by the administrator before: stays disabled.
    let calls = run_maintainer_script(&dir, &postinst, &["configure", "0.0.1"], true);
    assert!(calls.contains(&"deb-systemd-helper update-state op-lite.service".to_owned()), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains(" enable ")), "{calls:?}");
    // Without systemd running (a chroot, an image build): links only.
    let absent = dir.join("no-systemd");
    let postinst_chroot = script("postinst", &absent);
    assert_eq!(run_maintainer_script(&dir, &postinst_chroot, &["configure", "0.0.1"], false), enable[..3]);

    let prerm = script("prerm", &running);
    assert_eq!(
        run_maintainer_script(&dir, &prerm, &["remove"], false),
        ["deb-systemd-invoke stop op-lite.service"]
    );
    assert!(run_maintainer_script(&dir, &prerm, &["upgrade", "0.2.0"], false).is_empty());

    // postrm, its paths moved into the test's directory: remove masks, purge deletes
    // configuration and state.
    let fake_root = dir.join("root");
    let etc = fake_root.join("etc/op-lite");
    let private = fake_root.join("var/lib/private/op-lite");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(etc.join("rollup.json"), "{}").unwrap();
    std::fs::write(private.join("jwt.hex"), "0x00").unwrap();
    std::os::unix::fs::symlink("private/op-lite", fake_root.join("var/lib/op-lite")).unwrap();
    let text = read(control.join("postrm"))
        .replace("/run/systemd/system", running.to_str().unwrap())
        .replace("/etc/op-lite", etc.to_str().unwrap())
        .replace(" /var/lib/", &format!(" {}/var/lib/", fake_root.display()));
    assert!(
        !text.contains(" /etc/") && !text.contains(" /var/lib/"),
        "postrm would touch this machine: {text}"
    );
    let postrm = dir.join("postrm.sh");
    std::fs::write(&postrm, text).unwrap();
    assert_eq!(
        run_maintainer_script(&dir, &postrm, &["remove"], false),
        ["systemctl --system daemon-reload", "deb-systemd-helper mask op-lite.service"]
    );
    assert!(etc.exists() && private.exists(), "remove keeps configuration and state");
    assert_eq!(
        run_maintainer_script(&dir, &postrm, &["purge"], false),
        ["deb-systemd-helper purge op-lite.service", "deb-systemd-helper unmask op-lite.service"]
    );
    assert!(!etc.exists() && !private.exists(), "purge removes configuration and state");
    assert!(std::fs::symlink_metadata(fake_root.join("var/lib/op-lite")).is_err());
    assert!(fake_root.join("var/lib/private").exists(), "systemd's private directory stays");
    std::fs::remove_dir_all(&dir).unwrap();
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
