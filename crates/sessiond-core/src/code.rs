//! The stable machine-readable codes of every failure the server can answer, each with its
//! status and title on one line: a code without a status or a title does not compile, and
//! the API description lists exactly [`Code::ALL`].

macro_rules! codes {
    ($($variant:ident = $name:literal, $status:literal, $title:literal;)*) => {
        /// A failure code clients branch on (`code` in a problem answer).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in the order the API description lists them.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// The HTTP status the code is answered with. `VALIDATION_ERROR` is 422 for a
            /// body that parsed but broke a rule; the HTTP layer answers it with 400 or 415
            /// for requests it could not read at all.
            pub const fn status(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)*
                }
            }

            /// A short human-readable summary (the problem's `title`), the same for every
            /// occurrence of the code.
            pub const fn title(self) -> &'static str {
                match self {
                    $(Code::$variant => $title,)*
                }
            }
        }
    };
}

codes! {
    ValidationError = "VALIDATION_ERROR", 422, "The request is invalid";
    TokenNotProvided = "TOKEN_NOT_PROVIDED", 401, "No token was provided";
    TokenInvalid = "TOKEN_INVALID", 401, "The token is invalid";
    TokenExpired = "TOKEN_EXPIRED", 401, "The token has expired";
    SessionRevoked = "SESSION_REVOKED", 401, "The session was revoked";
    SessionExpired = "SESSION_EXPIRED", 401, "The session has expired";
    SessionInactive = "SESSION_INACTIVE", 401, "The session timed out from inactivity";
    UserInactive = "USER_INACTIVE", 401, "The user is deactivated";
    RefreshTokenInvalid = "REFRESH_TOKEN_INVALID", 401, "The refresh token is invalid";
    RefreshTokenExpired = "REFRESH_TOKEN_EXPIRED", 401, "The refresh token has expired";
    RefreshTokenReused = "REFRESH_TOKEN_REUSED", 401, "The refresh token was already used";
    InvalidCredentials = "INVALID_CREDENTIALS", 401, "Invalid credentials";
    OtpInvalid = "OTP_INVALID", 401, "The code is invalid";
    OtpExpired = "OTP_EXPIRED", 401, "The code has expired";
    OtpAttemptsExceeded = "OTP_ATTEMPTS_EXCEEDED", 429, "Too many wrong codes";
    UpstreamRejected = "UPSTREAM_REJECTED", 401, "The identity provider rejected the token";
    UpstreamRateLimited = "UPSTREAM_RATE_LIMITED", 429, "The identity provider is rate limiting";
    UpstreamUnavailable = "UPSTREAM_UNAVAILABLE", 503, "An upstream service is unavailable";
    Forbidden = "FORBIDDEN", 403, "Forbidden";
    CsrfRejected = "CSRF_REJECTED", 403, "Cross-site request refused";
    EmailNotVerified = "EMAIL_NOT_VERIFIED", 403, "The email address is not verified";
    NotFound = "NOT_FOUND", 404, "Not found";
    MethodNotAllowed = "METHOD_NOT_ALLOWED", 405, "Method not allowed";
    Conflict = "CONFLICT", 409, "Conflict";
    SessionLimitExceeded = "SESSION_LIMIT_EXCEEDED", 409, "Too many sessions";
    PayloadTooLarge = "PAYLOAD_TOO_LARGE", 413, "Payload too large";
    RateLimited = "RATE_LIMITED", 429, "Too many requests";
    InternalError = "INTERNAL_ERROR", 500, "Internal error";
    StorageUnavailable = "STORAGE_UNAVAILABLE", 503, "Storage is unavailable";
    ServiceOverloaded = "SERVICE_OVERLOADED", 503, "The server is overloaded";
    RevocationCursorExpired = "REVOCATION_CURSOR_EXPIRED", 409, "The revocation cursor can no longer be continued";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_has_a_distinct_screaming_snake_case_name_a_status_and_a_title() {
        let names: HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        for code in Code::ALL {
            let name = code.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
            assert!(code.title().starts_with(char::is_uppercase), "{name}");
            assert!((400..600).contains(&code.status()), "{name}");
        }
    }
}
