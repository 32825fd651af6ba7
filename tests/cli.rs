//! The `gatehouse` binary: start-up failures end with one clear line and a non-zero exit code.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gatehouse() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("GATEHOUSE_ADDR")
        .env("RUST_LOG", "warn");
    command
}

fn stderr_lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn help_explains_every_option() {
    let output = gatehouse().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "serve",
        "migrate",
        "--database-url",
        "DATABASE_URL",
        "--addr",
        "GATEHOUSE_ADDR",
        "--log-format",
    ] {
        assert!(
            help.contains(needle),
            "--help does not mention {needle}:\n{help}"
        );
    }
}

#[test]
fn a_bad_database_url_is_one_line_and_exit_code_1() {
    let output = gatehouse()
        .args(["migrate", "--database-url", "mysql://nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("error: invalid database URL"),
        "{lines:?}"
    );
}

#[test]
fn an_unreachable_database_is_one_line_and_exit_code_1() {
    let output = gatehouse()
        .args([
            "migrate",
            "--database-url",
            "postgres://postgres:secret@127.0.0.1:1/gatehouse",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("error: cannot open the database"),
        "{lines:?}"
    );
    assert!(
        !lines[0].contains("secret"),
        "the password leaked: {lines:?}"
    );
}

#[test]
fn a_taken_port_is_one_line_and_exit_code_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = gatehouse()
        .args(["serve", "--addr", &addr, "--database-url"])
        .arg(format!("sqlite://{}/g.db", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("error: cannot listen on {addr}")),
        "{lines:?}"
    );
}

#[test]
fn migrate_creates_the_sqlite_file_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/gatehouse.db");
    let output = gatehouse()
        .args(["migrate", "--database-url"])
        .arg(format!("sqlite://{}", path.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(path.exists());
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = gatehouse()
        .args(["serve", "--addr", &addr, "--database-url"])
        .arg(format!("sqlite://{}/g.db", dir.path().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
