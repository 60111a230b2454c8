//! Seeds for the randomized tests, taken from an environment variable so that a failing run
//! can be replayed exactly as it went.

/// A randomized test's seed. Held for the length of the test: when the test fails, it says
/// the seed again with the command that replays the run.
pub struct Seed {
    value: u64,
    var: &'static str,
}

impl Seed {
    /// The seed in the variable `var`, else a random one: each run tries something new.
    pub fn random(var: &'static str) -> Self {
        Self::from_env(var, || {
            getrandom::u64().unwrap_or_else(|e| panic!("no random seed ({e}): set {var}"))
        })
    }

    /// The seed in the variable `var`, else `default`: each run tries the same inputs.
    pub fn fixed(var: &'static str, default: u64) -> Self {
        Self::from_env(var, || default)
    }

    fn from_env(var: &'static str, otherwise: impl FnOnce() -> u64) -> Self {
        let value = match std::env::var(var) {
            Ok(text) if !text.trim().is_empty() => text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{var}={text} is not a seed ({e})")),
            _ => otherwise(),
        };
        println!("seed {value} ({var})");
        Self { value, var }
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    /// The command that runs this test again with this seed: the test thread bears the test's
    /// name, and a PostgreSQL run goes through the script that provides the server.
    fn replay(&self) -> String {
        let test = std::thread::current()
            .name()
            .filter(|name| name.contains("::"))
            .map(|name| format!(" {name} --exact"))
            .unwrap_or_default();
        let runner = if super::postgres_server().is_some() {
            "scripts/with-postgres "
        } else {
            ""
        };
        format!(
            "{}={} {runner}cargo test --test integration --{test} --include-ignored",
            self.var, self.value
        )
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("replay with: {}", self.replay());
        }
    }
}
