//! Fixtures made with `koppel-admin`, one builder per command: `sample()` is the usual
//! case, and a test names only what it changes, so each call reads as an example of the
//! command. They answer what the CLI prints with `--json`: the API's own view of the
//! resource (a connector as `GET /v1/connectors/{id}`, a credential just issued with its
//! secret, a user as `GET /v1/users`).

use serde_json::Value;

use crate::{admin, s};

/// Runs `koppel-admin --json` with some stack's environment (see [`crate::stack::Gateway`]).
pub type Admin<'a> = &'a dyn Fn(&[&str]) -> Value;

/// `koppel-admin workspace create`.
#[derive(Clone, Debug)]
pub struct NewWorkspace {
    name: String,
    owner_email: String,
    owner_name: String,
}

impl NewWorkspace {
    /// `name`, owned by "Eva Eigenaar" at an address of her own.
    pub fn sample(name: &str) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            name: name.to_owned(),
            owner_email: format!("owner-{tag}@gemeente.example"),
            owner_name: "Eva Eigenaar".into(),
        }
    }

    pub fn owner_email(mut self, e: &str) -> Self {
        e.clone_into(&mut self.owner_email);
        self
    }

    pub fn owner_name(mut self, n: &str) -> Self {
        n.clone_into(&mut self.owner_name);
        self
    }

    pub fn args(&self) -> Vec<String> {
        [
            "workspace",
            "create",
            "--name",
            &self.name,
            "--owner-email",
            &self.owner_email,
            "--owner-name",
            &self.owner_name,
        ]
        .map(str::to_owned)
        .into()
    }

    /// The workspace as `GET /v1/me` shows one (`id`, `name`), with its `owner` as
    /// `GET /v1/users` does.
    pub fn create(&self) -> Value {
        self.create_by(&admin)
    }

    /// [`Self::create`] through `admin` (e.g. another stack's).
    pub fn create_by(&self, admin: Admin) -> Value {
        run(admin, &self.args())
    }
}

/// `koppel-admin connector create`.
#[derive(Clone, Debug)]
pub struct NewConnector {
    workspace: String,
    acting_user: String,
    description: String,
    level: String,
    scopes: Vec<String>,
    rate_limit: Option<u32>,
    allow_ips: Vec<String>,
}

impl NewConnector {
    /// "e2e connector" of `workspace`, acting for `acting_user` at `handle` level, with
    /// `cases:read` only and the deployment's rate limit.
    pub fn sample(workspace: &str, acting_user: &str) -> Self {
        Self {
            workspace: workspace.to_owned(),
            acting_user: acting_user.to_owned(),
            description: "e2e connector".into(),
            level: "handle".into(),
            scopes: vec!["cases:read".into()],
            rate_limit: None,
            allow_ips: Vec::new(),
        }
    }

    pub fn description(mut self, d: &str) -> Self {
        d.clone_into(&mut self.description);
        self
    }

    /// `read` or `handle`.
    pub fn level(mut self, l: &str) -> Self {
        l.clone_into(&mut self.level);
        self
    }

    /// Instead of the sample's `cases:read`.
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Requests per minute per credential.
    pub fn rate_limit(mut self, n: u32) -> Self {
        self.rate_limit = Some(n);
        self
    }

    /// Only these source addresses or CIDRs (none: every address).
    pub fn allow_ips(mut self, allow: &[&str]) -> Self {
        self.allow_ips = allow.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "connector",
            "create",
            "--workspace",
            &self.workspace,
            "--description",
            &self.description,
            "--acting-user",
            &self.acting_user,
            "--access-level",
            &self.level,
        ]
        .map(str::to_owned)
        .into();
        for scope in &self.scopes {
            a.extend(["--scope".to_owned(), scope.clone()]);
        }
        if let Some(n) = self.rate_limit {
            a.extend(["--rate-limit".to_owned(), n.to_string()]);
        }
        for ip in &self.allow_ips {
            a.extend(["--allow-ip".to_owned(), ip.clone()]);
        }
        a
    }

    /// The connector, as `GET /v1/connectors/{id}` shows it.
    pub fn create(&self) -> Value {
        self.create_by(&admin)
    }

    /// [`Self::create`] through `admin` (e.g. another stack's).
    pub fn create_by(&self, admin: Admin) -> Value {
        run(admin, &self.args())
    }

    /// Creates it: its id.
    pub fn id(&self) -> String {
        s(&self.create()["id"]).to_owned()
    }

    /// Creates it and issues it a connector token: (connector id, `Bearer …`).
    pub fn with_token(&self) -> (String, String) {
        let id = self.id();
        let (_, token) = NewCredential::token(&self.workspace, &id).secret();
        (id, format!("Bearer {token}"))
    }
}

/// `koppel-admin credential issue-key | issue-token | issue-pat`.
#[derive(Clone, Debug)]
pub struct NewCredential {
    command: &'static str,
    workspace: String,
    /// `--connector` or `--user`, and its id.
    holder: (&'static str, String),
    name: Option<String>,
    rate_limit: Option<u32>,
    expires_in: Option<String>,
    scopes: Vec<String>,
}

impl NewCredential {
    fn new(command: &'static str, workspace: &str, holder: (&'static str, &str)) -> Self {
        Self {
            command,
            workspace: workspace.to_owned(),
            holder: (holder.0, holder.1.to_owned()),
            name: None,
            rate_limit: None,
            expires_in: None,
            scopes: Vec::new(),
        }
    }

    /// An API key of `connector` (for `API-Interface-Id` + `API-Key`).
    pub fn key(workspace: &str, connector: &str) -> Self {
        Self::new("issue-key", workspace, ("--connector", connector))
    }

    /// A connector token of `connector` (for `Authorization: Bearer`).
    pub fn token(workspace: &str, connector: &str) -> Self {
        Self::new("issue-token", workspace, ("--connector", connector))
    }

    /// A personal access token of `user` (who needs `api_access`).
    pub fn pat(workspace: &str, user: &str) -> Self {
        Self::new("issue-pat", workspace, ("--user", user))
    }

    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_owned());
        self
    }

    /// Requests per minute for this credential.
    pub fn rate_limit(mut self, n: u32) -> Self {
        self.rate_limit = Some(n);
        self
    }

    /// A lifetime such as `1s` or `30d`.
    pub fn expires_in(mut self, d: &str) -> Self {
        self.expires_in = Some(d.to_owned());
        self
    }

    /// Narrowed to `scope` (repeatable).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scopes.push(scope.to_owned());
        self
    }

    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "credential",
            self.command,
            "--workspace",
            &self.workspace,
            self.holder.0,
            &self.holder.1,
        ]
        .map(str::to_owned)
        .into();
        let optional = [
            ("--name", self.name.clone()),
            ("--rate-limit", self.rate_limit.map(|n| n.to_string())),
            ("--expires-in", self.expires_in.clone()),
        ];
        for (flag, value) in optional {
            if let Some(v) = value {
                a.extend([flag.to_owned(), v]);
            }
        }
        for scope in &self.scopes {
            a.extend(["--scope".to_owned(), scope.clone()]);
        }
        a
    }

    /// The credential just issued, with its secret (shown this once).
    pub fn issue(&self) -> Value {
        self.issue_by(&admin)
    }

    /// [`Self::issue`] through `admin` (e.g. another stack's).
    pub fn issue_by(&self, admin: Admin) -> Value {
        run(admin, &self.args())
    }

    /// Issues it: (credential id, secret).
    pub fn secret(&self) -> (String, String) {
        let c = self.issue();
        (s(&c["id"]).to_owned(), s(&c["secret"]).to_owned())
    }
}

/// `koppel-admin user add`.
#[derive(Clone, Debug)]
pub struct NewUser {
    workspace: String,
    email: String,
    name: String,
    rights: String,
    flags: Vec<(&'static str, bool)>,
}

impl NewUser {
    /// "Medewerker", a `handle` employee of `workspace` with an address of their own and no
    /// flags (no `api_access`).
    pub fn sample(workspace: &str) -> Self {
        Self {
            workspace: workspace.to_owned(),
            email: format!("u-{}@gemeente.example", uuid::Uuid::new_v4().simple()),
            name: "Medewerker".into(),
            rights: "handle".into(),
            flags: Vec::new(),
        }
    }

    pub fn email(mut self, e: &str) -> Self {
        e.clone_into(&mut self.email);
        self
    }

    pub fn name(mut self, n: &str) -> Self {
        n.clone_into(&mut self.name);
        self
    }

    /// `read` or `handle`.
    pub fn rights(mut self, r: &str) -> Self {
        r.clone_into(&mut self.rights);
        self
    }

    /// May hold personal access tokens.
    pub fn api_access(self, on: bool) -> Self {
        self.flag("--api-access", on)
    }

    pub fn manage_users(self, on: bool) -> Self {
        self.flag("--manage-users", on)
    }

    pub fn manage_connectors(self, on: bool) -> Self {
        self.flag("--manage-connectors", on)
    }

    fn flag(mut self, flag: &'static str, on: bool) -> Self {
        self.flags.push((flag, on));
        self
    }

    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "user",
            "add",
            "--workspace",
            &self.workspace,
            "--email",
            &self.email,
            "--name",
            &self.name,
            "--rights",
            &self.rights,
        ]
        .map(str::to_owned)
        .into();
        for (flag, on) in &self.flags {
            a.extend([(*flag).to_owned(), on.to_string()]);
        }
        a
    }

    /// The user, as `GET /v1/users` shows one.
    pub fn add(&self) -> Value {
        run(&admin, &self.args())
    }

    /// Adds them: their id.
    pub fn id(&self) -> String {
        s(&self.add()["id"]).to_owned()
    }
}

/// `koppel-admin jwt generate-key`: a fresh ES256 pair whose public half `connector`
/// accepts from `issuer`; the answer holds `kid` and `private_key_pem`.
pub fn jwt_key(workspace: &str, connector: &str, issuer: &str, kid: &str) -> Value {
    admin(&[
        "jwt",
        "generate-key",
        "--workspace",
        workspace,
        "--connector",
        connector,
        "--issuer",
        issuer,
        "--kid",
        kid,
    ])
}

fn run(admin: Admin, args: &[String]) -> Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    admin(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_sample_names_every_flag_it_needs() {
        let a = NewConnector::sample("ws_1", "usr_1")
            .scopes(&["dsr:read", "dsr:write"])
            .rate_limit(1000)
            .args();
        assert_eq!(
            a.join(" "),
            "connector create --workspace ws_1 --description e2e connector --acting-user usr_1 \
             --access-level handle --scope dsr:read --scope dsr:write --rate-limit 1000"
        );
    }

    #[test]
    fn credentials_name_their_holder_and_only_the_options_set() {
        assert_eq!(
            NewCredential::token("ws_1", "con_1").args().join(" "),
            "credential issue-token --workspace ws_1 --connector con_1"
        );
        assert_eq!(
            NewCredential::pat("ws_1", "usr_1")
                .expires_in("1s")
                .scope("dsr:read")
                .args()
                .join(" "),
            "credential issue-pat --workspace ws_1 --user usr_1 --expires-in 1s --scope dsr:read"
        );
    }

    #[test]
    fn a_users_flags_follow_the_rights() {
        let a = NewUser::sample("ws_1")
            .rights("read")
            .api_access(true)
            .args();
        assert_eq!(&a[..4], ["user", "add", "--workspace", "ws_1"]);
        assert_eq!(a[8..].join(" "), "--rights read --api-access true");
    }
}
