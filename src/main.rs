//! The `op-lite` binary: flags -> Config -> node shell -> run; errors -> exit code.
//!
//! Exit codes: 0 clean stop, 1 runtime failure (init failed, critical error), 2 usage or
//! configuration error, 3 halted by `--rollup.halt`, 130 forced exit on a second signal.

use std::ffi::OsString;
use std::process::ExitCode;

use op_lite::config::{cli, Config, RawArgs};
use op_lite::io;
use op_lite::io::node::{exit_code, RunOptions, Shell};

const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Commands come first so that they can answer `--help` themselves.
    if let Some(first) = args.first().and_then(|a| a.to_str()) {
        if !first.starts_with('-') {
            let cmd = first.to_string();
            args.remove(0);
            return run_command(&cmd, args);
        }
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        io::out::print(&cli::help_text());
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        io::out::println(&op_lite::version::long_version());
        return ExitCode::SUCCESS;
    }
    run_node(args)
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("op-lite: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn run_command(cmd: &str, args: Vec<OsString>) -> ExitCode {
    match cmd {
        "replay" => ExitCode::from(op_lite::tools::replay::main(args)),
        "decode" => ExitCode::from(op_lite::tools::decode::main(args)),
        "p2p" => ExitCode::from(op_lite::tools::p2p::main(args)),
        "networks" => ExitCode::from(op_lite::tools::networks::main(args, io::clock::now().unix())),
        #[cfg(feature = "devnet")]
        "devnet" => ExitCode::from(op_lite::tools::devnet::main(args)),
        _ => usage_error(format!("unknown command {cmd:?} (see --help)")),
    }
}

fn run_node(args: Vec<OsString>) -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let raw = match RawArgs::parse(args, &env) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let config = match Config::from_raw(&raw, &|p| io::files::read_to_string(p, io::files::MAX_CONFIG_FILE)) {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    op_lite::io::log::init(config.log.level, config.log.format, config.log.color);
    for w in &raw.warnings {
        log::warn!("{w}");
    }
    let mut shell = match Shell::start(config, RunOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(e.exit_code());
        }
    };
    ExitCode::from(exit_code(&shell.run()))
}
