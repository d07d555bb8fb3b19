//! `koppel-admin`: administer a Koppel deployment from the command line. Bootstraps
//! workspaces, users, connectors and credentials; seeds the local demo. Works against a
//! deployed stack too: region and endpoint come from the usual AWS settings, the table and
//! secrets from the `KOPPEL_*` variables the functions use.

mod commands;
mod datakey;
mod demo;
mod manage;
mod through_api;

use clap::{Args, Parser, Subcommand};
use koppel_shared::Ctx;
use koppel_shared::model::{Level, Scope};

#[derive(Parser)]
#[command(
    version,
    about = "Administer Koppel: workspaces, users, connectors, credentials"
)]
struct Cli {
    /// Print results as JSON (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Workspaces (tenants).
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    /// Users (employees) of a workspace.
    #[command(subcommand)]
    User(UserCmd),
    /// Connector profiles.
    #[command(subcommand)]
    Connector(ConnectorCmd),
    /// Saved searches: which cases and fields a connector sees.
    #[command(subcommand)]
    SavedSearch(SearchCmd),
    /// API keys and tokens: issue (shown once) and revoke.
    #[command(subcommand)]
    Credential(CredentialCmd),
    /// JWT issuers and public keys of connectors.
    #[command(subcommand)]
    Jwt(JwtCmd),
    /// Cases (zaken).
    #[command(subcommand)]
    Case(CaseCmd),
    /// The data key that seals per-record secrets at rest.
    #[command(subcommand)]
    DataKey(DataKeyCmd),
    /// Seed a demo workspace with every credential kind and write it as JSON.
    Demo {
        /// Base URL the demo's curl lines and JSON point at.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        base_url: String,
        /// Where to write the demo JSON.
        #[arg(long, default_value = ".koppel/demo.json")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum DataKeyCmd {
    /// After rotating the data key in Secrets Manager (and waiting five minutes for every
    /// function to pick it up): re-seal every value still under an older version, so that
    /// the next rotation loses nothing.
    Reseal,
}

#[derive(Subcommand)]
enum CaseCmd {
    /// Import cases from a JSON-lines file, one `POST /v1/cases` body per line (for demos,
    /// migrations and load tests; no history or events).
    Import {
        /// Workspace id (`ws_…`).
        #[arg(long)]
        workspace: String,
        /// The JSON-lines file (read twice: checked in full, then written).
        #[arg(long)]
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum WorkspaceCmd {
    /// Create a workspace with its owner (all rights and flags).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// The owner's e-mail address.
        #[arg(long)]
        owner_email: String,
        /// The owner's name.
        #[arg(long)]
        owner_name: String,
    },
    /// List every workspace.
    List,
    /// Show a workspace.
    Get {
        #[arg(long)]
        workspace: String,
    },
    /// Rename a workspace.
    Update {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        name: String,
    },
    /// Delete a workspace and everything of it (users, connectors, credentials, cases,
    /// requests, endpoints, deliveries). Cannot be undone.
    Delete {
        #[arg(long)]
        workspace: String,
        /// Confirms the deletion.
        #[arg(long, required = true)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum SearchCmd {
    /// List a workspace's saved searches.
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Show a saved search.
    Get {
        #[arg(long)]
        workspace: String,
        /// Saved search id (`srch_…`).
        #[arg(long)]
        search: String,
    },
    /// Create one from a JSON file as `POST /v1/saved-searches` takes it
    /// (`{name, filters, columns}`).
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Change one with the fields in a JSON file (absent fields stay as they are).
    Update {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        search: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Delete one (refused while a connector uses it).
    Delete {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        search: String,
    },
}

#[derive(Args)]
struct UserFlags {
    /// May hold personal access tokens.
    #[arg(long)]
    api_access: Option<bool>,
    /// May list and revoke other users' tokens.
    #[arg(long)]
    manage_users: Option<bool>,
    /// May manage connectors.
    #[arg(long)]
    manage_connectors: Option<bool>,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user.
    Add {
        /// Workspace id (`ws_…`).
        #[arg(long)]
        workspace: String,
        /// E-mail address, unique in the workspace.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// `read` (raadplegen) or `handle` (behandelen).
        #[arg(long)]
        rights: Level,
        #[command(flatten)]
        flags: UserFlags,
    },
    /// Change a user's rights or flags.
    Update {
        /// Workspace id (`ws_…`).
        #[arg(long)]
        workspace: String,
        /// User id (`usr_…`).
        #[arg(long)]
        user: String,
        /// New rights: `read` or `handle`.
        #[arg(long)]
        rights: Option<Level>,
        #[command(flatten)]
        flags: UserFlags,
    },
    /// List a workspace's users.
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Show a user.
    Get {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        user: String,
    },
    /// Deactivate a user (users are never deleted: the audit trail names them). Their
    /// tokens are revoked; refused while connectors act for them.
    Deactivate {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        user: String,
    },
}

/// What `--generate-token` issues.
#[derive(Clone, Copy, clap::ValueEnum)]
enum GeneratedKind {
    Token,
    ApiKey,
}

impl GeneratedKind {
    fn kind(self) -> koppel_shared::credential::CredentialKind {
        match self {
            Self::Token => koppel_shared::credential::CredentialKind::ConnectorToken,
            Self::ApiKey => koppel_shared::credential::CredentialKind::ApiKey,
        }
    }
}

#[derive(Subcommand)]
enum ConnectorCmd {
    /// Create a connector acting for a user.
    Create {
        /// Workspace id (`ws_…`).
        #[arg(long)]
        workspace: String,
        /// Shown to partners' users, e.g. in the subject of OTP e-mails.
        #[arg(long)]
        description: String,
        /// The employee on whose behalf the connector acts.
        #[arg(
            long,
            required_unless_present = "new_user_email",
            conflicts_with = "new_user_email"
        )]
        acting_user: Option<String>,
        /// Make a new employee for it to act for (no API access of their own): e-mail.
        #[arg(long, requires = "new_user_name")]
        new_user_email: Option<String>,
        /// The new employee's name.
        #[arg(long, requires = "new_user_email")]
        new_user_name: Option<String>,
        /// The new employee's rights (default: the connector's access level).
        #[arg(long, requires = "new_user_email")]
        new_user_rights: Option<Level>,
        /// Issue its first credential with it: `token` (default) or `api-key`; the secret is
        /// printed this once.
        #[arg(long, num_args = 0..=1, default_missing_value = "token")]
        generate_token: Option<GeneratedKind>,
        /// `read` or `handle`; capped by the acting user's rights.
        #[arg(long)]
        access_level: Level,
        /// A linked operation, e.g. `cases:read` (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        /// An allowed source address or CIDR, IPv4 or IPv6 (repeatable; none allows all).
        #[arg(long = "allow-ip")]
        allow_ips: Vec<String>,
        /// Requests per minute per credential (default: the deployment's).
        #[arg(long)]
        rate_limit: Option<u32>,
    },
    /// List a workspace's connectors.
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Show a connector.
    Get {
        #[command(flatten)]
        at: ConnectorRef,
    },
    /// Change a connector's fields (as `PATCH /v1/connectors/{id}`).
    Update {
        #[command(flatten)]
        at: ConnectorRef,
        #[arg(long)]
        description: Option<String>,
        /// Another employee for it to act for.
        #[arg(long)]
        acting_user: Option<String>,
        #[arg(long)]
        access_level: Option<Level>,
        /// Replaces its operations (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<Scope>,
        /// Replaces its allow-list (repeatable); `--allow-any-ip` empties it.
        #[arg(long = "allow-ip", conflicts_with = "allow_any_ip")]
        allow_ips: Vec<String>,
        #[arg(long)]
        allow_any_ip: bool,
        /// Requests per minute per credential, or `default`.
        #[arg(long)]
        rate_limit: Option<String>,
        /// The saved search deciding which cases it sees (`srch_…`), or `none`.
        #[arg(long)]
        saved_search: Option<String>,
    },
    /// Delete a connector with its subscriptions; its credentials fail from then on.
    Delete {
        #[command(flatten)]
        at: ConnectorRef,
    },
    /// Apply a partner's manifest (JSON: `scopes`, `description`, `event_types`).
    Import {
        #[command(flatten)]
        at: ConnectorRef,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Enable a connector.
    Enable {
        #[command(flatten)]
        at: ConnectorRef,
    },
    /// Disable a connector: all its credentials stop working at once.
    Disable {
        #[command(flatten)]
        at: ConnectorRef,
    },
}

// Which connector a command is about. (Not a doc comment: clap would take it as the
// command's about text.)
#[derive(Args)]
struct ConnectorRef {
    /// Workspace id (`ws_…`).
    #[arg(long)]
    workspace: String,
    /// Connector id (`con_…`, the API-Interface-Id).
    #[arg(long)]
    connector: String,
}

#[derive(Args)]
struct IssueFlags {
    /// A name to recognise the credential by.
    #[arg(long, default_value = "issued by koppel-admin")]
    name: String,
    /// Narrow the credential to these scopes (repeatable; default: all its holder has).
    #[arg(long = "scope")]
    scopes: Vec<Scope>,
    /// Requests per minute for this credential.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Lifetime, e.g. `90s`, `15m`, `12h`, `30d` (default: no expiry).
    #[arg(long, value_parser = commands::parse_duration)]
    expires_in: Option<jiff::SignedDuration>,
}

#[derive(Subcommand)]
enum CredentialCmd {
    /// Issue a connector API key (for `API-Interface-Id` + `API-Key`).
    IssueKey {
        #[command(flatten)]
        at: ConnectorRef,
        #[command(flatten)]
        issue: IssueFlags,
    },
    /// Issue a connector token (for `Authorization: Bearer`).
    IssueToken {
        #[command(flatten)]
        at: ConnectorRef,
        #[command(flatten)]
        issue: IssueFlags,
    },
    /// Issue a user's personal access token (the user needs `api_access`).
    IssuePat {
        /// Workspace id (`ws_…`).
        #[arg(long)]
        workspace: String,
        /// User id (`usr_…`).
        #[arg(long)]
        user: String,
        #[command(flatten)]
        issue: IssueFlags,
    },
    /// Revoke a credential by id; it stops working at once.
    Revoke {
        /// Credential id (the part after the kind in the secret).
        #[arg(long)]
        credential: String,
    },
}

#[derive(Subcommand)]
enum JwtCmd {
    /// Register a connector's issuer and a public key (JWK or JWK set, from a file).
    Register {
        #[command(flatten)]
        at: ConnectorRef,
        /// The `iss` the partner's tokens carry; unique across Koppel.
        #[arg(long)]
        issuer: String,
        /// File with a public JWK, or a JWK set (`{"keys": [...]}`).
        #[arg(long)]
        jwk_file: std::path::PathBuf,
    },
    /// Generate an ES256 key pair, register its public half, print the private key once.
    GenerateKey {
        #[command(flatten)]
        at: ConnectorRef,
        #[arg(long)]
        issuer: String,
        #[arg(long, default_value = "key-1")]
        kid: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = async {
        let ctx = Ctx::from_env().await?;
        run(cli.command, &ctx).await
    }
    .await;
    match result {
        Ok(out) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&out.json).expect("JSON"));
            } else {
                println!("{}", out.text);
            }
        }
        Err(e) => {
            // Scripts asking for JSON get their errors as JSON too.
            if cli.json {
                let err = serde_json::json!({ "error": { "message": e } });
                eprintln!("{}", serde_json::to_string_pretty(&err).expect("JSON"));
            } else {
                eprintln!("koppel-admin: {e}");
            }
            std::process::exit(1);
        }
    }
}

/// A command's result, for people and for scripts.
pub struct Output {
    pub text: String,
    pub json: serde_json::Value,
}

async fn run(cmd: Command, ctx: &Ctx) -> Result<Output, String> {
    use commands as c;
    use manage as m;
    // Each command's view becomes the `--json` answer.
    fn out<T: serde::Serialize>(r: Result<c::Done<T>, String>) -> Result<Output, String> {
        r.map(Output::from)
    }
    match cmd {
        Command::Workspace(WorkspaceCmd::Create {
            name,
            owner_email,
            owner_name,
        }) => out(c::create_workspace(ctx, &name, &owner_email, &owner_name).await),
        Command::User(UserCmd::Add {
            workspace,
            email,
            name,
            rights,
            flags,
        }) => out(c::add_user(ctx, &workspace, &email, &name, rights, flags.into()).await),
        Command::User(UserCmd::Update {
            workspace,
            user,
            rights,
            flags,
        }) => out(c::update_user(ctx, &workspace, &user, rights, flags.into()).await),
        Command::Connector(ConnectorCmd::Create {
            workspace,
            description,
            acting_user,
            new_user_email,
            new_user_name,
            new_user_rights,
            generate_token,
            access_level,
            scopes,
            allow_ips,
            rate_limit,
        }) => {
            let acting = match (&acting_user, &new_user_email, &new_user_name) {
                (Some(u), _, _) => c::Acting::User(u),
                (None, Some(e), Some(n)) => {
                    c::Acting::NewUser(e, n, new_user_rights.unwrap_or(access_level))
                }
                // clap requires one or the other.
                _ => unreachable!("--acting-user or --new-user-email with --new-user-name"),
            };
            out(c::create_connector(
                ctx,
                c::NewConnector {
                    workspace: &workspace,
                    description: &description,
                    acting,
                    access_level,
                    scopes,
                    allow_ips,
                    rate_limit,
                    saved_search_id: None,
                    generate: generate_token.map(GeneratedKind::kind),
                },
            )
            .await)
        }
        Command::Workspace(WorkspaceCmd::List) => out(m::list_workspaces(ctx).await),
        Command::Workspace(WorkspaceCmd::Get { workspace }) => {
            out(m::get_workspace(ctx, &workspace).await)
        }
        Command::Workspace(WorkspaceCmd::Update { workspace, name }) => {
            out(m::rename_workspace(ctx, &workspace, &name).await)
        }
        Command::Workspace(WorkspaceCmd::Delete { workspace, yes: _ }) => {
            out(m::delete_workspace(ctx, &workspace).await)
        }
        Command::User(UserCmd::List { workspace }) => out(m::list_users(ctx, &workspace).await),
        Command::User(UserCmd::Get { workspace, user }) => {
            out(m::get_user(ctx, &workspace, &user).await)
        }
        Command::User(UserCmd::Deactivate { workspace, user }) => {
            out(m::deactivate_user(ctx, &workspace, &user).await)
        }
        Command::Connector(ConnectorCmd::List { workspace }) => {
            out(m::list_connectors(ctx, &workspace).await)
        }
        Command::Connector(ConnectorCmd::Get { at }) => {
            out(m::get_connector(ctx, &at.workspace, &at.connector).await)
        }
        Command::Connector(ConnectorCmd::Update {
            at,
            description,
            acting_user,
            access_level,
            scopes,
            allow_ips,
            allow_any_ip,
            rate_limit,
            saved_search,
        }) => {
            let rate_limit = match rate_limit.as_deref() {
                None => None,
                Some("default") => Some(None),
                Some(n) => Some(Some(n.parse::<u32>().map_err(|_| {
                    format!("--rate-limit: `{n}` is not a number (or `default`)")
                })?)),
            };
            let change = m::ConnectorChange {
                description,
                acting_user,
                access_level,
                scopes: (!scopes.is_empty()).then_some(scopes),
                allow_ips: (allow_any_ip || !allow_ips.is_empty()).then_some(allow_ips),
                rate_limit,
                saved_search: saved_search.map(|s| (s != "none").then_some(s)),
            };
            out(m::update_connector(ctx, &at.workspace, &at.connector, change).await)
        }
        Command::Connector(ConnectorCmd::Delete { at }) => {
            out(m::delete_connector(ctx, &at.workspace, &at.connector).await)
        }
        Command::Connector(ConnectorCmd::Import { at, file }) => {
            out(m::import_manifest(ctx, &at.workspace, &at.connector, &file).await)
        }
        Command::SavedSearch(SearchCmd::List { workspace }) => {
            out(m::list_searches(ctx, &workspace).await)
        }
        Command::SavedSearch(SearchCmd::Get { workspace, search }) => {
            out(m::get_search(ctx, &workspace, &search).await)
        }
        Command::SavedSearch(SearchCmd::Create { workspace, file }) => {
            out(m::create_search(ctx, &workspace, &file).await)
        }
        Command::SavedSearch(SearchCmd::Update {
            workspace,
            search,
            file,
        }) => out(m::update_search(ctx, &workspace, &search, &file).await),
        Command::SavedSearch(SearchCmd::Delete { workspace, search }) => {
            out(m::delete_search(ctx, &workspace, &search).await)
        }
        Command::Connector(ConnectorCmd::Enable { at }) => {
            out(c::set_connector_enabled(ctx, &at.workspace, &at.connector, true).await)
        }
        Command::Connector(ConnectorCmd::Disable { at }) => {
            out(c::set_connector_enabled(ctx, &at.workspace, &at.connector, false).await)
        }
        Command::Credential(CredentialCmd::IssueKey { at, issue }) => out(
            c::issue_connector_credential(ctx, &at.workspace, &at.connector, true, issue.into())
                .await,
        ),
        Command::Credential(CredentialCmd::IssueToken { at, issue }) => out(
            c::issue_connector_credential(ctx, &at.workspace, &at.connector, false, issue.into())
                .await,
        ),
        Command::Credential(CredentialCmd::IssuePat {
            workspace,
            user,
            issue,
        }) => out(c::issue_pat(ctx, &workspace, &user, issue.into()).await),
        Command::Credential(CredentialCmd::Revoke { credential }) => {
            out(c::revoke(ctx, &credential).await)
        }
        Command::Jwt(JwtCmd::Register {
            at,
            issuer,
            jwk_file,
        }) => {
            let text = std::fs::read_to_string(&jwk_file)
                .map_err(|e| format!("cannot read {}: {e}", jwk_file.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", jwk_file.display()))?;
            let keys = match v.get("keys").and_then(|k| k.as_array()) {
                Some(ks) => ks.clone(),
                None => vec![v],
            };
            out(c::register_jwt(ctx, &at.workspace, &at.connector, &issuer, keys).await)
        }
        Command::Jwt(JwtCmd::GenerateKey { at, issuer, kid }) => {
            out(c::generate_jwt_key(ctx, &at.workspace, &at.connector, &issuer, &kid).await)
        }
        Command::Demo {
            base_url,
            out: path,
        } => out(demo::seed(ctx, &base_url, &path).await),
        Command::Case(CaseCmd::Import { workspace, file }) => {
            out(c::import_cases(ctx, &workspace, &file).await)
        }
        Command::DataKey(DataKeyCmd::Reseal) => datakey::reseal(ctx).await,
    }
}

impl From<UserFlags> for commands::Flags {
    fn from(f: UserFlags) -> Self {
        Self {
            api_access: f.api_access,
            manage_users: f.manage_users,
            manage_connectors: f.manage_connectors,
        }
    }
}

impl From<IssueFlags> for commands::Issue {
    fn from(f: IssueFlags) -> Self {
        Self {
            name: f.name,
            scopes: (!f.scopes.is_empty()).then(|| f.scopes.into_iter().collect()),
            rate_limit: f.rate_limit,
            expires_in: f.expires_in,
        }
    }
}
