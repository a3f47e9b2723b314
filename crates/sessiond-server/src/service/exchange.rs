//! Login by a partner app's token, vouched for by the partner's identity API.

use sessiond_core::{AuthMethod, Device, DomainError, Email, SessionId, UserId, fields};
use sessiond_store::{NewUser, UserProfile};

use super::grant::SessionRequest;
use super::{Service, ServiceResult, TokenGrant};
use crate::infra::exchange::ExternalIdentity;
use crate::state::cache::Invalidation;

impl Service {
    pub async fn exchange(
        &self,
        provider: &str,
        token: &str,
        device: Device,
        upgrade: Option<SessionId>,
    ) -> ServiceResult<TokenGrant> {
        if !self.exchange.has_provider(provider) {
            return Err(DomainError::invalid_field("provider", "unknown provider").into());
        }
        fields::exchange_token(token)?;
        let identity = self.exchange.identify(provider, token).await?;
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
    /// the provider vouched for at each login.
    async fn user_for_identity(
        &self,
        identity: &ExternalIdentity,
    ) -> ServiceResult<sessiond_core::User> {
        let now = self.now();
        // An address is only recorded when nobody has it: the provider's word is not a
        // reason to hand an existing account to whoever holds a partner token.
        let email = identity.email.as_deref().and_then(|e| Email::parse(e).ok());
        let profile = UserProfile {
            name: identity.name.clone(),
            mobile: identity.mobile.clone(),
            profile: identity.profile.clone(),
        };
        let mut tx = self.store.begin().await?;
        let user_id = match tx
            .identity_user(&identity.provider, &identity.external_id)
            .await?
        {
            Some(user_id) => user_id,
            None => {
                let free_email = match &email {
                    Some(e) if tx.user_id_by_email(e).await?.is_none() => Some(e.clone()),
                    _ => None,
                };
                let user = tx
                    .insert_user(&NewUser {
                        id: UserId::new(),
                        email: free_email,
                        name: identity.name.clone(),
                        password_hash: None,
                        // The partner vouched for the person, not that they read this mail.
                        email_verified: false,
                        created_at: now,
                    })
                    .await?;
                tx.insert_identity(&identity.provider, &identity.external_id, user.id, now)
                    .await?;
                tracing::info!(user_id = %user.id, provider = %identity.provider, "user created by token exchange");
                user.id
            }
        };
        if let Some(e) = &email
            && tx.user_id_by_email(e).await?.is_none()
        {
            tx.set_user_email(user_id, e).await?;
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
