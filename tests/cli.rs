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
        assert!(help.contains(needle), "--help does not mention {needle}:\n{help}");
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
    assert!(lines[0].starts_with("error: invalid database URL"), "{lines:?}");
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
    assert!(!lines[0].contains("secret"), "the password leaked: {lines:?}");
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

#[test]
fn evaluate_reads_json_lines_and_reports_bad_ones() {
    use std::io::Write;
    let mut child = gatehouse()
        .args(["evaluate", "--now", "2024-01-10T00:00:00Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = concat!(
        r#"{"flagKey":"f","rules":[{"filter":{"type":"context","field":"company.createdAt","operator":"AFTER","values":["5"]},"value":true}],"context":{"company":{"createdAt":"2024-01-08"}}}"#,
        "\n",
        "not json\n",
        r#"{"flagKey":"g","rules":[{"filter":{"type":"context","field":"company.id","operator":"IS","values":["acme"]},"value":true}],"context":{}}"#,
        "\n"
    );
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed line makes the exit code 1"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["value"], true);
    assert_eq!(lines[0]["reason"], "rule #0 matched");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].is_string());
    assert_eq!(lines[2]["value"], serde_json::Value::Null);
    assert_eq!(
        lines[2]["missingContextFields"],
        serde_json::json!(["company.id"])
    );
}

#[test]
fn evaluate_refuses_a_bad_clock_in_one_line() {
    let output = gatehouse()
        .args(["evaluate", "--now", "yesterday"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("RFC 3339"), "{lines:?}");
}

#[test]
fn sigterm_stops_the_server_even_with_an_open_event_stream() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/g.db", dir.path().display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = gatehouse()
        .args(["serve", "--addr", &addr, "--database-url", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let keys = gatehouse()
        .args(["keys", "list", "--database-url", &url])
        .output()
        .unwrap();
    let listing = String::from_utf8(keys.stdout).unwrap();
    let key = listing
        .lines()
        .find(|l| l.starts_with("production\tpublishable\t"))
        .and_then(|l| l.split('\t').nth(2))
        .unwrap()
        .to_string();

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /sse/server?publishableKey={key} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    let stopping = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "the open stream kept the server from stopping"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
}

/// `gatehouse keys list | head -1`: a reader that stops early ends the command quietly, as with
/// other command-line tools, instead of a panic about a broken pipe.
#[test]
fn a_closed_pipe_ends_a_listing_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/gatehouse.db", dir.path().display());
    let mut child = gatehouse()
        .args(["keys", "list", "--database-url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is printed
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
