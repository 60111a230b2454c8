//! A client that writes raw lines to the server's stdin, for inputs no SDK would send.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use super::{BIN, prepared};

pub struct RawServer {
    child: Child,
    stdin: ChildStdin,
    /// Lines from stdout, read as they come: a test that writes much without reading must not
    /// block the server on a full pipe (and itself on the server).
    lines: mpsc::UnboundedReceiver<String>,
    /// Everything the server wrote to stderr so far (a panic message lands here).
    stderr: Arc<Mutex<String>>,
    /// Answers read while waiting for others, by id.
    answered: HashMap<String, Value>,
    /// Error answers that carry no id (a line too broken to find its id in).
    pub anonymous_errors: usize,
    /// Answers to an id that had been answered already.
    pub duplicate_answers: usize,
}

/// The key an answer is filed under: its id as JSON text.
fn id_key(id: &Value) -> String {
    id.to_string()
}

impl RawServer {
    /// Spawns the server and completes the `initialize` handshake.
    pub async fn start(db: &Path) -> Self {
        let mut child = tokio::process::Command::from(prepared(Path::new(BIN), db, &[], None))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the server binary");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 8192];
            while let Ok(n) = pipe.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        let mut server = Self {
            child,
            stdin,
            lines,
            stderr,
            answered: HashMap::new(),
            anonymous_errors: 0,
            duplicate_answers: 0,
        };
        let initialize = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}});
        server.send(&initialize.to_string()).await;
        let answer = server.answer(&json!("init")).await;
        assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
        server
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await;
        server
    }

    /// Writes one line.
    pub async fn send(&mut self, line: &str) {
        let write = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.write_all(b"\n").await?;
            self.stdin.flush().await
        };
        tokio::time::timeout(Duration::from_secs(30), write)
            .await
            .unwrap_or_else(|_| panic!("the server stopped reading stdin"))
            .expect("write to the server");
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&request.to_string()).await;
        self.answer(&id).await
    }

    /// Waits for the answer with this id, filing the others it reads meanwhile.
    pub async fn answer(&mut self, id: &Value) -> Value {
        let key = id_key(id);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(answer) = self.answered.remove(&key) {
                return answer;
            }
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no answer to {key} in time; stderr: {}", self.stderr_tail())
                })
                .unwrap_or_else(|| {
                    panic!("the server closed stdout; stderr: {}", self.stderr_tail())
                });
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("the server writes only JSON on stdout ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{message}");
            let id = message.get("id").filter(|id| !id.is_null()).map(id_key);
            let is_error = message.get("error").is_some();
            match id {
                Some(key) => {
                    let again = self.answered.insert(key, message).is_some();
                    self.duplicate_answers += usize::from(again);
                }
                None if is_error => self.anonymous_errors += 1,
                // A notification (a resource update, a log message).
                None => {}
            }
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("process status").is_none()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stderr_tail(&self) -> String {
        let all = self.stderr();
        let start = all.len().saturating_sub(2_000);
        all.get(start..).unwrap_or(&all).to_owned()
    }
}
