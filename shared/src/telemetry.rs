//! Logging: JSON lines in Lambda (CloudWatch adds the time), compact text locally unless
//! `KOPPEL_LOG_FORMAT=json` (the bench measures the bytes Lambda would log).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let json = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("KOPPEL_LOG_FORMAT").is_ok_and(|f| f == "json");
    let result = if json {
        builder
            .json()
            // The span names the request; the module path says nothing a reader needs.
            .with_target(false)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .with_ansi(false)
            .try_init()
    } else {
        builder.compact().with_writer(std::io::stderr).try_init()
    };
    // A second init (tests, a tool that embeds handlers) keeps the first subscriber.
    let _ = result;
}
