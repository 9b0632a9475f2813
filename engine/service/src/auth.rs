//! Who is asking: bearer tokens (hashed at rest) and, in development, a plain actor header.
//!
//! Every operation needs an identity acting in a role. Tokens are configured as
//! `[[auth.tokens]] id, role, unit, token_sha256`; the server keeps only the SHA-256 of each
//! token, so a leaked config file does not leak credentials. Dev mode accepts
//! `X-Bianmin-Actor: <id>;<role>[;<unit>]` without any secret and must never run in production.

use schemas::{Actor, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header dev mode reads the actor from.
pub const DEV_ACTOR_HEADER: &str = "x-bianmin-actor";

/// One configured token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The identity the token stands for.
    pub id: String,
    /// The role it acts in.
    pub role: Role,
    /// Its unit (department or community code), where the role has one.
    #[serde(default)]
    pub unit: Option<String>,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: String,
}

/// Why a caller could not be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials given.
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Missing,
    /// The token is not one this server knows.
    #[error("unknown bearer token")]
    UnknownToken,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    MalformedAuthorization,
    /// The dev actor header is malformed.
    #[error("malformed actor header: expected `<id>;<role>[;<unit>]`")]
    MalformedActor,
}

impl AuthError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "unauthenticated",
            AuthError::UnknownToken => "unauthenticated",
            AuthError::MalformedAuthorization => "unauthenticated",
            AuthError::MalformedActor => "malformed_actor",
        }
    }
}

/// Turns request credentials into an [`Actor`].
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// (sha256 bytes, actor)
    tokens: Vec<([u8; 32], Actor)>,
    dev_identity: bool,
}

impl Authenticator {
    /// An authenticator over the configured tokens; `dev_identity` also accepts the actor
    /// header. Tokens whose hash is not 64 hex digits are skipped (reported by `invalid`).
    pub fn new(tokens: &[TokenConfig], dev_identity: bool) -> Authenticator {
        let tokens = tokens
            .iter()
            .filter_map(|token| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(token.token_sha256.trim(), &mut hash).ok()?;
                let actor = Actor {
                    id: token.id.clone(),
                    role: token.role,
                    unit: token.unit.clone(),
                };
                Some((hash, actor))
            })
            .collect();
        Authenticator {
            tokens,
            dev_identity,
        }
    }

    /// Ids of configured tokens whose hash is malformed (to report at start-up).
    pub fn invalid(tokens: &[TokenConfig]) -> Vec<String> {
        tokens
            .iter()
            .filter(|t| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(t.token_sha256.trim(), &mut hash).is_err()
            })
            .map(|t| t.id.clone())
            .collect()
    }

    /// Whether the dev actor header is accepted.
    pub fn dev_identity(&self) -> bool {
        self.dev_identity
    }

    /// The actor behind a bearer token (the part after `Bearer `) or, in dev mode, the actor
    /// header. A bearer token wins over the header.
    pub fn authenticate(
        &self,
        bearer_token: Option<&str>,
        dev_actor_header: Option<&str>,
    ) -> Result<Actor, AuthError> {
        if let Some(token) = bearer_token {
            let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
            return self
                .tokens
                .iter()
                .find(|(hash, _)| *hash == digest)
                .map(|(_, actor)| actor.clone())
                .ok_or(AuthError::UnknownToken);
        }
        match dev_actor_header {
            Some(header) if self.dev_identity => parse_actor(header),
            _ => Err(AuthError::Missing),
        }
    }
}

/// The token of an `Authorization` header value: `None` without a header, the part after
/// `Bearer ` otherwise. A header that is present but not a bearer credential (another scheme,
/// no token, bytes that are not text) is refused rather than ignored, so a wrong credential
/// never falls back to the dev actor header.
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<Option<&str>, AuthError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let value = std::str::from_utf8(value).map_err(|_| AuthError::MalformedAuthorization)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::MalformedAuthorization);
    }
    Ok(Some(token))
}

/// Parses `<id>;<role>[;<unit>]`.
pub fn parse_actor(header: &str) -> Result<Actor, AuthError> {
    let mut parts = header.split(';').map(str::trim);
    let id = parts.next().filter(|id| !id.is_empty() && id.len() <= 128);
    let role = parts
        .next()
        .and_then(|r| Role::ALL.into_iter().find(|role| role.as_str() == r));
    let unit = parts.next().filter(|u| !u.is_empty()).map(str::to_string);
    match (id, role, parts.next()) {
        (Some(id), Some(role), None) => Ok(Actor {
            id: id.to_string(),
            role,
            unit,
        }),
        _ => Err(AuthError::MalformedActor),
    }
}

/// Hex SHA-256 of a token, as written in `token_sha256`.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a role may read of single requests; the rule itself is engine-core's
/// ([`engine_core::request::read_scope`], [`engine_core::Request::visible_to`]), shared by
/// every read and every command.
pub use engine_core::request::ReadScope as ReadAccess;

/// The read access of `actor`'s role.
pub fn read_access(actor: &Actor) -> ReadAccess {
    engine_core::request::read_scope(actor.role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, role: Role, secret: &str) -> TokenConfig {
        TokenConfig {
            id: id.into(),
            role,
            unit: Some("u1".into()),
            token_sha256: hash_token(secret),
        }
    }

    #[test]
    fn an_authorization_header_that_is_no_bearer_credential_is_refused() {
        assert_eq!(bearer_token(None), Ok(None));
        assert_eq!(bearer_token(Some(b"Bearer s3cret")), Ok(Some("s3cret")));
        assert_eq!(bearer_token(Some(b"bearer  s3cret ")), Ok(Some("s3cret")));
        for bad in [
            &b"Basic eDp5"[..],
            b"s3cret",
            b"Bearer ",
            b"Bearer",
            b"\xff\xfe",
        ] {
            assert_eq!(
                bearer_token(Some(bad)),
                Err(AuthError::MalformedAuthorization),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_known_token_yields_its_actor_and_an_unknown_one_is_refused() {
        let auth = Authenticator::new(&[token("desk-1", Role::StationWorker, "s3cret")], false);
        let actor = auth.authenticate(Some("s3cret"), None).unwrap();
        assert_eq!(actor.id, "desk-1");
        assert_eq!(actor.role, Role::StationWorker);
        assert_eq!(
            auth.authenticate(Some("other"), None),
            Err(AuthError::UnknownToken)
        );
        assert_eq!(auth.authenticate(None, None), Err(AuthError::Missing));
    }

    #[test]
    fn the_actor_header_counts_only_in_dev_mode() {
        let strict = Authenticator::new(&[], false);
        assert_eq!(
            strict.authenticate(None, Some("w1;station_worker")),
            Err(AuthError::Missing)
        );
        let dev = Authenticator::new(&[], true);
        let actor = dev
            .authenticate(None, Some("h1;department_handler;urban-management"))
            .unwrap();
        assert_eq!(actor.role, Role::DepartmentHandler);
        assert_eq!(actor.unit.as_deref(), Some("urban-management"));
        for bad in [
            "",
            "w1",
            "w1;boss",
            ";station_worker",
            "a;station_worker;u;extra",
        ] {
            assert_eq!(
                dev.authenticate(None, Some(bad)),
                Err(AuthError::MalformedActor),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_hashes_are_reported() {
        let mut bad = token("x", Role::Auditor, "t");
        bad.token_sha256 = "zz".into();
        assert_eq!(
            Authenticator::invalid(&[bad.clone()]),
            vec!["x".to_string()]
        );
        assert_eq!(
            Authenticator::new(&[bad], false).authenticate(Some("t"), None),
            Err(AuthError::UnknownToken)
        );
    }
}
