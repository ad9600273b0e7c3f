//! HTTP-level authentication and policy layers, reusable around any HTTP
//! or gRPC service: [`AuthLayer`] runs a chain of [`AuthStrategy`]s and
//! puts the [`Identity`](crate::Identity) into request extensions (and
//! refuses cookie-authenticated cross-site writes and upgrades);
//! [`RequireIdentityHttpLayer`] refuses anonymous requests (and so
//! anonymous WebSocket upgrades); [`AllowedOriginsLayer`] refuses foreign
//! origins; [`ApiKeyStrategy`] is a ready strategy.
//!
//! Event-level anonymous rejection (per action) is
//! [`RequireIdentityLayer`](crate::require_identity::RequireIdentityLayer).

mod api_key;
mod authenticate;
mod cross_site;
mod origin;
mod rejection;
mod require_identity;

pub use api_key::{API_KEY_HEADER, ApiKeyStrategy};
pub use authenticate::{AuthLayer, Authenticate};
pub use channels_binding_core::auth::{AuthError, AuthErrorKind, AuthStrategies, AuthStrategy, CredentialKind};
pub use origin::{AllowedOrigins, AllowedOriginsLayer, InvalidOrigin};
pub use rejection::RejectOrCall;
pub use require_identity::{RequireIdentityHttp, RequireIdentityHttpLayer};
