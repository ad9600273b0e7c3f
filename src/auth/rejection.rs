//! Refusals of the HTTP-level layers: `401` with its challenges, and the
//! future of a layer that either refuses or calls its inner service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use channels_binding_core::protocol::EventError;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;

use crate::body::{Body, BoxError};

/// A 401 with one `WWW-Authenticate` challenge per scheme (RFC 9110 §11.6.1).
pub(crate) fn unauthenticated(message: &str, schemes: &[&'static str], invalid_token: bool) -> Response<Body> {
    let mut response = crate::response::error(&EventError::unauthenticated(message.to_owned()));
    let schemes: &[&'static str] = if schemes.is_empty() { &["Bearer"] } else { schemes };
    for scheme in schemes {
        let challenge = if invalid_token && *scheme == "Bearer" {
            format!(r#"{scheme} realm="channels-binding", error="invalid_token""#)
        } else {
            format!(r#"{scheme} realm="channels-binding""#)
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().append(WWW_AUTHENTICATE, value);
        }
    }
    response
}

pin_project! {
    /// The response future of a layer that either refuses a request itself
    /// or calls its inner service: no boxing, the inner body boxed into
    /// [`Body`] so both answers have one type.
    pub struct RejectOrCall<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Rejected { response: Option<Response<Body>> },
        Inner { #[pin] future: F },
    }
}

impl<F> RejectOrCall<F> {
    pub(crate) fn reject(response: Response<Body>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn call(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }
}

impl<F, ResBody> Future for RejectOrCall<F>
where
    F: Future<Output = Result<Response<ResBody>, Infallible>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Rejected { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| crate::response::error(&EventError::internal())))),
            KindProj::Inner { future } => future
                .poll(cx)
                .map_ok(|response| response.map(|body| body.map_err(Into::into).boxed_unsync())),
        }
    }
}
