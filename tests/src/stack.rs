//! A second `koppel-local` beside the test stack, for tests that need what the test stack
//! cannot be: a gateway whose functions fail in a chosen way, or a stack with other
//! template parameters. Killed when dropped, also when the test fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use koppel_shared::{Ctx, Settings};
use serde_json::Value;

use crate::{admin_with, var};

pub struct Gateway {
    child: Child,
    pub url: String,
    log: std::path::PathBuf,
    /// The functions' environment of this gateway's stack, for the admin CLI.
    env: Vec<(String, String)>,
}

impl Gateway {
    /// Serves the routes only, over the test stack's own table and queues, with `env` set
    /// over the template's function environment.
    pub async fn routes_only(env: &[(&str, &str)]) -> Self {
        let mut global = Vec::new();
        for (k, v) in env {
            global.push("--env".to_owned());
            global.push(format!("{k}={v}"));
        }
        Self::start(global, &["--routes-only"]).await
    }

    /// A whole stack of its own in the test stack's emulator: tables, queues and secrets,
    /// queue consumers and schedules, with template parameters `params`.
    pub async fn own_stack(params: &[(&str, &str)]) -> Self {
        let name = format!(
            "koppel-e2e-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut global = vec!["--stack-name".to_owned(), name];
        for (k, v) in params {
            global.push("--param".to_owned());
            global.push(format!("{k}={v}"));
        }
        let mut gw = Self::start(global.clone(), &[]).await;
        gw.env = stack_env(&global);
        gw
    }

    /// A context over this gateway's stack, as its functions have it (a fresh one holds the
    /// current data key).
    pub async fn ctx(&self) -> Ctx {
        let settings = Settings::from_vars(|k| {
            self.env
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(k).ok())
        })
        .expect("the stack's KOPPEL_* settings");
        Ctx::new(&Ctx::sdk_config().await, settings)
    }

    /// `koppel-admin --json <args>` against this gateway's stack.
    pub fn admin(&self, args: &[&str]) -> Value {
        admin_with(&self.env, args)
    }

    /// Starts `koppel-local <global> serve --listen <free port> <serve>` and waits
    /// (bounded) until it answers.
    async fn start(global: Vec<String>, serve: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("koppel-e2e-gateway-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(var("KOPPEL_E2E_LOCAL"))
            .args(["--template", &var("KOPPEL_E2E_TEMPLATE")])
            .args(&global)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(serve)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start koppel-local");
        let mut gw = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            env: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = gw.child.try_wait().expect("child status") {
                panic!(
                    "the second gateway exited ({status}): see {}",
                    gw.log.display()
                );
            }
            let up = reqwest::get(format!("{}/v1/me", gw.url))
                .await
                .is_ok_and(|r| r.status() == 401);
            if up {
                return gw;
            }
            assert!(
                Instant::now() < deadline,
                "the second gateway did not answer within 30 s: see {}",
                gw.log.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `koppel-local <global> env` exports (`export K='v'` lines).
fn stack_env(global: &[String]) -> Vec<(String, String)> {
    let out = Command::new(var("KOPPEL_E2E_LOCAL"))
        .args(["--template", &var("KOPPEL_E2E_TEMPLATE")])
        .args(global)
        .arg("env")
        .output()
        .expect("run koppel-local env");
    assert!(
        out.status.success(),
        "koppel-local env failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), unquote(v)))
        .collect()
}

/// Undoes koppel-local's shell quoting: `'…'`, with `'\''` for a quote.
fn unquote(v: &str) -> String {
    v.strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(v)
        .replace(r"'\''", "'")
}

#[cfg(test)]
mod tests {
    #[test]
    fn unquote_undoes_the_shell_quoting() {
        assert_eq!(super::unquote("'a b'"), "a b");
        assert_eq!(super::unquote(r"'it'\''s'"), "it's");
    }
}
