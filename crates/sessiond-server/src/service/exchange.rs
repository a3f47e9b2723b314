//! Login by a token a provider vouches for: a partner app's (its identity API is asked)
//! or an OpenID Connect ID token (Sign in with Apple/Google; checked locally).

use sessiond_core::{AuthMethod, Device, DomainError, Email, SessionId, UserId, fields};
use sessiond_store::{NewUser, UserChanges, UserProfile};

use super::grant::SessionRequest;
use super::{Service, ServiceResult, TokenGrant};
use crate::infra::exchange::ExternalIdentity;
use crate::state::cache::Invalidation;

impl Service {
    pub async fn exchange(
        &self,
        provider: &str,
        token: &str,
        nonce: Option<&str>,
        device: Device,
        upgrade: Option<SessionId>,
    ) -> ServiceResult<TokenGrant> {
        if !self.exchange.has_provider(provider) {
            return Err(DomainError::invalid_field("provider", "unknown provider").into());
        }
        fields::exchange_token(token)?;
        if let Some(nonce) = nonce {
            fields::exchange_nonce(nonce)?;
        }
        let identity = match self
            .exchange
            .identify(provider, token, nonce, self.now())
            .await
        {
            Ok(identity) => identity,
            Err(e) => {
                if matches!(
                    e,
                    DomainError::UpstreamRejected | DomainError::IdTokenRejected(_)
                ) {
                    let method = format!("exchange:{provider}");
                    self.record_failed_login(&method, e.code().as_str(), None, &device)
                        .await;
                }
                return Err(e.into());
            }
        };
        let user = self.user_for_identity(&identity).await?;
        if !user.active {
            return Err(DomainError::UserInactive.into());
        }
        self.establish(SessionRequest {
            user: Some(user),
            method: AuthMethod::Exchange(provider.to_owned()),
            device,
            data: None,
            upgrade,
        })
        .await
    }

    /// Finds the user by (provider, external id) or creates one, refreshing the profile
    /// the provider vouched for at each login; a single-use token is spent here, in the
    /// same transaction, so a replay on any instance is refused.
    async fn user_for_identity(
        &self,
        identity: &ExternalIdentity,
    ) -> ServiceResult<sessiond_core::User> {
        let now = self.now();
        // An address is only recorded when nobody has it: the provider's word is not a
        // reason to hand an existing account to whoever holds a provider's token.
        let email = identity.email.as_deref().and_then(|e| Email::parse(e).ok());
        let profile = UserProfile {
            name: identity.name.clone(),
            mobile: identity.mobile.clone(),
            profile: identity.profile.clone(),
        };
        let mut tx = self.store.begin().await?;
        if let Some(once) = &identity.single_use
            && !tx.spend_token(&once.fingerprint, once.until).await?
        {
            return Err(DomainError::IdTokenRejected("it was already used").into());
        }
        let user_id = match tx
            .identity_user(&identity.provider, &identity.external_id)
            .await?
        {
            Some(user_id) => user_id,
            None => {
                let user = tx
                    .insert_user(&NewUser {
                        id: UserId::new(),
                        email: None,
                        name: identity.name.clone(),
                        password_hash: None,
                        email_verified: false,
                        created_at: now,
                    })
                    .await?;
                tx.insert_identity(&identity.provider, &identity.external_id, user.id, now)
                    .await?;
                let via = format!("exchange:{}", identity.provider);
                self.record_user_created(tx.as_mut(), &user, &via).await?;
                tracing::info!(user_id = %user.id, provider = %identity.provider, "user created by token exchange");
                user.id
            }
        };
        if let Some(e) = &email
            && tx.user_id_by_email(e).await?.is_none()
        {
            // A new address is verified only when the provider says so.
            let changes = UserChanges {
                name: None,
                email: Some(e.clone()),
                email_verified: Some(identity.email_verified),
            };
            tx.update_user(user_id, &changes, now).await?;
        }
        let user = tx
            .update_user_profile(user_id, &profile, now)
            .await?
            .ok_or(DomainError::UpstreamUnavailable)?;
        tx.commit().await?;
        self.fanout.publish(&[Invalidation::User(user.id)]).await;
        Ok(user)
    }
}
