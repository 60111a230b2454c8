//! The raw JSON-RPC probe: a client with no MCP SDK that writes newline-delimited requests to
//! the server's stdin and reads the answers from its stdout on one blocking thread. What it
//! times is the server's path from pipe to answer, plus the client's own round trip, which
//! `floor` measures against `cat`.
//!
//! The standard streams come in the two kinds clients give them: pipes (Codex, the Python and
//! Rust SDKs) and Unix socket pairs (libuv's, so every Node client: Claude Code, Gemini CLI,
//! Copilot CLI).

use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How the server's stdin and stdout are connected to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Wire {
    Pipe,
    Socket,
}

impl Wire {
    pub fn name(self) -> &'static str {
        match self {
            Wire::Pipe => "pipe",
            Wire::Socket => "socket",
        }
    }
}

enum Input {
    Pipe(ChildStdin),
    Socket(UnixStream),
}

impl Write for Input {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Input::Pipe(pipe) => pipe.write(buf),
            Input::Socket(socket) => socket.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Input::Pipe(pipe) => pipe.flush(),
            Input::Socket(socket) => socket.flush(),
        }
    }
}

enum Output {
    Pipe(ChildStdout),
    Socket(UnixStream),
}

impl std::io::Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Output::Pipe(pipe) => pipe.read(buf),
            Output::Socket(socket) => socket.read(buf),
        }
    }
}

/// One server process (or `cat`, for the floor) and the client's ends of its streams.
pub struct Probe {
    child: Child,
    input: Input,
    output: BufReader<Output>,
    next_id: u64,
    line: String,
}

impl Probe {
    /// Starts `program` with `args` and `env`, its stdin and stdout wired as `wire` says.
    pub fn spawn(program: &str, args: &[&str], env: &[(&str, String)], wire: Wire) -> Self {
        let mut command = Command::new(program);
        command.args(args).stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let (input, output, child) = match wire {
            Wire::Pipe => {
                let mut child = command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn");
                let input = Input::Pipe(child.stdin.take().expect("stdin"));
                let output = Output::Pipe(child.stdout.take().expect("stdout"));
                (input, output, child)
            }
            Wire::Socket => {
                let (ours_in, theirs_in) = UnixStream::pair().expect("socket pair");
                let (ours_out, theirs_out) = UnixStream::pair().expect("socket pair");
                let child = command
                    .stdin(Stdio::from(OwnedFd::from(theirs_in)))
                    .stdout(Stdio::from(OwnedFd::from(theirs_out)))
                    .spawn()
                    .expect("spawn");
                (Input::Socket(ours_in), Output::Socket(ours_out), child)
            }
        };
        Probe {
            child,
            input,
            output: BufReader::new(output),
            next_id: 0,
            line: String::new(),
        }
    }

    /// The coordinator on database `db`, past the `initialize` handshake.
    pub fn server(bin: &str, db: &Path, wire: Wire) -> Self {
        let env = [
            ("MCP_COORDINATOR_DB_PATH", db.display().to_string()),
            ("MCP_COORDINATOR_LOG", "error".to_owned()),
        ];
        let mut probe = Probe::spawn(bin, &[], &env, wire);
        let answer = probe.request(
            "initialize",
            &json!({"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "probe", "version": "1"}}),
        );
        assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
        probe.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        probe
    }

    /// Writes one line (the newline is added) in one write.
    pub fn send(&mut self, line: &str) {
        let mut framed = String::with_capacity(line.len() + 1);
        framed.push_str(line);
        framed.push('\n');
        self.input.write_all(framed.as_bytes()).expect("write");
    }

    /// Reads the next line.
    pub fn receive(&mut self) -> &str {
        self.line.clear();
        let n = self.output.read_line(&mut self.line).expect("read");
        assert!(n > 0, "the other side closed its output");
        &self.line
    }

    /// Sends a request and returns its answer (the next line: the probe never has two in
    /// flight and the coordinator sends no notifications unasked).
    pub fn request(&mut self, method: &str, params: &Value) -> Value {
        let (line, _) = self.timed(method, params);
        serde_json::from_str(&line).expect("the server writes JSON")
    }

    /// A request's answer and round trip; the answer is parsed by the caller, outside the time.
    pub fn timed(&mut self, method: &str, params: &Value) -> (String, Duration) {
        self.next_id += 1;
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"{method}","params":{params}}}"#,
            self.next_id
        );
        let started = Instant::now();
        self.send(&line);
        let answer = self.receive().to_owned();
        (answer, started.elapsed())
    }

    /// `tools/call` of `tool`; panics when the call fails, returns the structured answer.
    pub fn call(&mut self, tool: &str, arguments: &Value) -> Value {
        let answer = self.request("tools/call", &json!({"name": tool, "arguments": arguments}));
        let result = &answer["result"];
        assert_ne!(result["isError"], true, "{tool}({arguments}): {answer}");
        result["structuredContent"].clone()
    }

    /// The client's own cost: a line of `size` bytes through `cat` and back.
    pub fn floor(wire: Wire, size: usize, n: usize) -> Vec<Duration> {
        let mut cat = Probe::spawn("cat", &[], &[], wire);
        let line = "x".repeat(size);
        (0..n)
            .map(|_| {
                let started = Instant::now();
                cat.send(&line);
                cat.receive();
                started.elapsed()
            })
            .collect()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
