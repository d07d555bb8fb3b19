//! `koppel-local`: runs Koppel on this machine against a local AWS emulator, from
//! template.yaml alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use koppel_local::consumer::{Consumer, QueueFunction};
use koppel_local::gateway::tls::{PeerCert, Tls};
use koppel_local::gateway::{Gateway, HttpFunction};
use koppel_local::resources;
use koppel_local::schedule::{ScheduledFunction, Scheduler};
use koppel_local::template::{Template, scalar};
use koppel_shared::{Ctx, Settings};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    version,
    about = "Run Koppel locally against an AWS emulator, as template.yaml declares it"
)]
struct Cli {
    /// The SAM template to read.
    #[arg(long, global = true, default_value = "template.yaml")]
    template: PathBuf,
    /// Template parameter override, `Name=Value` (repeatable).
    #[arg(long = "param", global = true, value_parser = parse_kv)]
    params: Vec<(String, String)>,
    /// Sets `KEY=VALUE` in every function's environment, over what the template resolves
    /// to (repeatable). A local and debugging aid, e.g. point one gateway's events at
    /// another queue.
    #[arg(long = "env", global = true, value_parser = parse_kv)]
    env: Vec<(String, String)>,
    /// The stack's name: `AWS::StackName` and the prefix of every local resource name. A
    /// second stack in the same emulator, under another name, has tables, queues and
    /// secrets of its own (tests that need other settings than the running stack).
    #[arg(long, global = true, default_value = "koppel", value_parser = parse_stack_name)]
    stack_name: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the template's tables, queues and secrets in the emulator (idempotent).
    Setup,
    /// Print a function's resolved environment as `export` lines (after setup).
    Env {
        /// Logical id of the function, e.g. TokensFunction.
        #[arg(long, default_value = "TokensFunction")]
        function: String,
    },
    /// Set up, then serve every template route through the real authorizer and handlers.
    Serve {
        /// Address to listen on (repeatable; e.g. 127.0.0.1:3000 and [::1]:3000).
        #[arg(long = "listen", default_values = ["127.0.0.1:3000", "[::1]:3000"])]
        listen: Vec<SocketAddr>,
        /// Copy every message the local queue consumers take to this queue (created if
        /// missing), to watch events without taking them from the functions.
        #[arg(long)]
        tap_queue: Option<String>,
        /// Run every `Schedule` event this often instead of at its template rate (tests).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
        schedule_every: Option<u64>,
        /// Serve the routes only: no queue consumers and no schedules (e.g. a second gateway
        /// beside a running stack).
        #[arg(long)]
        routes_only: bool,
        /// Serve HTTPS (TLS 1.2 or newer) with this PEM certificate chain, as API Gateway's
        /// custom domain does.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of `--tls-cert`.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Mutual TLS: ask clients for a certificate and verify it against these PEM CA
        /// certificates (the truststore); the verified one reaches the authorizer as
        /// `clientCert`. Unlike API Gateway, a client without a certificate is served too.
        #[arg(long, requires = "tls_cert")]
        client_ca: Option<PathBuf>,
    },
}

/// CloudFormation's rule for stack names, kept short enough for the queue names built on it.
fn parse_stack_name(s: &str) -> Result<String, String> {
    let ok = s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("a letter, then letters, digits and `-`; at most 40 characters".into())
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not Name=Value"))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[tokio::main]
async fn main() {
    koppel_shared::telemetry::init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("koppel-local: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    // This tool creates resources: it must never reach a real AWS account by accident.
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL is not set: koppel-local only talks to a local emulator")?;
    if !(endpoint.starts_with("http://127.")
        || endpoint.starts_with("http://localhost")
        || endpoint.starts_with("http://[::1]"))
    {
        return Err(format!(
            "AWS_ENDPOINT_URL={endpoint} is not a local emulator"
        ));
    }
    let template = Template::load(&cli.template)?;
    let params = template.parameters(&cli.params.into_iter().collect());
    let sdk = Ctx::sdk_config().await;
    let phys = resources::ensure(&template, &sdk, &params, &cli.stack_name).await?;
    let env_overrides: HashMap<String, String> = cli.env.into_iter().collect();
    let env_of = |function: &str| -> Result<HashMap<String, String>, String> {
        let mut env = template.function_env(function, &phys, &params)?;
        env.extend(env_overrides.clone());
        Ok(env)
    };

    match cli.command {
        Command::Setup => {
            let mut out = serde_json::Map::new();
            for (k, v) in &phys.refs {
                out.insert(k.clone(), v.clone().into());
            }
            println!("{}", serde_json::Value::Object(out));
            Ok(())
        }
        Command::Env { function } => {
            let env = env_of(&function)?;
            let mut keys: Vec<_> = env.keys().collect();
            keys.sort();
            for k in keys {
                println!("export {k}={}", shell_quote(&env[k]));
            }
            Ok(())
        }
        Command::Serve {
            listen,
            tap_queue,
            schedule_every,
            routes_only,
            tls_cert,
            tls_key,
            client_ca,
        } => {
            let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => {
                    let ca = client_ca.as_ref().map(read).transpose()?;
                    Some(Arc::new(Tls::from_pem(
                        &read(cert)?,
                        &read(key)?,
                        ca.as_deref(),
                    )?))
                }
                _ => None,
            };
            let tap_url = match &tap_queue {
                None => None,
                Some(name) => Some(
                    aws_sdk_sqs::Client::new(&sdk)
                        .create_queue()
                        .queue_name(name)
                        .send()
                        .await
                        .map_err(|e| {
                            format!(
                                "tap queue {name}: {}",
                                aws_sdk_sqs::error::DisplayErrorContext(&e)
                            )
                        })?
                        .queue_url()
                        .unwrap_or_default()
                        .to_owned(),
                ),
            };
            let ctx_for = |function: &str| -> Result<Ctx, String> {
                let env = env_of(function)?;
                let settings = Settings::from_vars(|k| env.get(k).cloned())
                    .map_err(|e| format!("{function}: {e}"))?;
                Ok(Ctx::new(&sdk, settings))
            };
            let authorizer_fn = template.authorizer_function()?;
            let mut functions = HashMap::new();
            let routes = template.routes();
            for r in &routes {
                if functions.contains_key(&r.function) {
                    continue;
                }
                let binary = template.binary(&r.function)?;
                let function = HttpFunction::from_binary(&binary).ok_or_else(|| {
                    format!(
                        "{}: the local gateway has no handler for binary `{binary}`",
                        r.function
                    )
                })?;
                functions.insert(r.function.clone(), (function, ctx_for(&r.function)?));
            }
            let (_, api) = template.api()?;
            let stage = scalar(&koppel_local::template::resolve(
                &api["Properties"]["StageName"],
                &phys,
                &params,
            )?);
            let gw = Arc::new(Gateway {
                routes,
                responses: template.gateway_responses()?,
                stage,
                region: phys.region.clone(),
                authorizer: ctx_for(&authorizer_fn)?,
                functions,
            });
            let consumers = if routes_only {
                vec![]
            } else {
                template.queue_consumers()?
            };
            for c in consumers {
                let binary = template.binary(&c.function)?;
                let env = env_of(&c.function)?;
                let function =
                    QueueFunction::from_binary(&binary, &sdk, &env)?.ok_or_else(|| {
                        format!(
                            "{}: the local stack has no queue handler for `{binary}`",
                            c.function
                        )
                    })?;
                let consumer = Consumer {
                    name: c.function.clone(),
                    function,
                    sqs: aws_sdk_sqs::Client::new(&sdk),
                    queue_url: phys
                        .refs
                        .get(&c.queue)
                        .cloned()
                        .ok_or(format!("no queue {}", c.queue))?,
                    queue_arn: phys
                        .attrs
                        .get(&(c.queue.clone(), "Arn".into()))
                        .cloned()
                        .unwrap_or_default(),
                    region: phys.region.clone(),
                    batch_size: c.batch_size,
                    report_batch_item_failures: c.report_batch_item_failures,
                    // The tap is for watching events; delivery jobs are not copied.
                    tap_url: tap_url.clone().filter(|_| c.queue == "EventsQueue"),
                };
                tracing::info!("{} consumes {}", c.function, c.queue);
                tokio::spawn(consumer.run());
            }
            let schedules = if routes_only {
                vec![]
            } else {
                template.schedules()?
            };
            for s in schedules {
                let binary = template.binary(&s.function)?;
                let function =
                    ScheduledFunction::from_binary(&binary, &sdk, &env_of(&s.function)?)?
                        .ok_or_else(|| {
                            format!(
                                "{}: the local stack has no scheduled handler for `{binary}`",
                                s.function
                            )
                        })?;
                let every = schedule_every.map_or(s.every, Duration::from_secs);
                tracing::info!(
                    "{}.{} runs every {every:?} ({})",
                    s.function,
                    s.name,
                    s.expression
                );
                tokio::spawn(
                    Scheduler {
                        name: format!("{}.{}", s.function, s.name),
                        stack: phys.stack.clone(),
                        function,
                        every,
                        region: phys.region.clone(),
                    }
                    .run(),
                );
            }
            for addr in listen {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("listen on {addr}: {e}"))?;
                let scheme = if tls.is_some() { "https" } else { "http" };
                tracing::info!("Koppel listening on {scheme}://{addr}");
                tokio::spawn(accept_loop(listener, gw.clone(), tls.clone()));
            }
            shutdown_signal().await;
            tracing::info!("stopping");
            Ok(())
        }
    }
}

async fn accept_loop(listener: TcpListener, gw: Arc<Gateway>, tls: Option<Arc<Tls>>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (gw, tls) = (gw.clone(), tls.clone());
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return serve(TokioIo::new(stream), gw, peer, None).await;
            };
            // A client that cannot finish the handshake (TLS 1.1, a key it does not hold,
            // a stalled one) gets no HTTP at all.
            let accepted =
                tokio::time::timeout(Duration::from_secs(10), tls.acceptor.accept(stream)).await;
            let stream = match accepted {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let client = Arc::new(tls.peer(stream.get_ref().1.peer_certificates()));
            serve(TokioIo::new(stream), gw, peer, Some(client)).await
        });
    }
}

/// Serves one connection's requests; each carries the connection's client certificate.
async fn serve<I>(io: I, gw: Arc<Gateway>, peer: SocketAddr, client: Option<Arc<PeerCert>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let gw = gw.clone();
        if let Some(c) = &client {
            req.extensions_mut().insert(c.clone());
        }
        async move { Ok::<_, std::convert::Infallible>(gw.handle(req, peer).await) }
    });
    if let Err(e) = http1::Builder::new().serve_connection(io, svc).await {
        tracing::debug!(error = %e, "connection closed");
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
