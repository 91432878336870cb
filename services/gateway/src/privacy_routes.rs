//! GDPR export: everything Chorus holds about a person, from every service, as one ZIP
//! archive of JSON files.

use crate::AppState;
use crate::auth::Authenticated;
use crate::routes::call;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chorus_bus::rpc::PersonalDataRequest;
use chorus_kit::{Caller, ServiceError, ServiceResult};
use serde_json::Value;
use utoipa::OpenApi;

/// The services asked, in the archive's order.
const SERVICES: &[&str] = &[
    "identity",
    "content",
    "scheduling",
    "publishing",
    "engagement",
    "gamification",
    "notifications",
];

#[derive(OpenApi)]
#[openapi(paths(my_personal_data, personal_data))]
pub struct PrivacyApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me/personal-data", get(my_personal_data))
        .route("/v1/users/{user_id}/personal-data", get(personal_data))
}

/// Everything Chorus holds about the caller (GDPR access and portability): a ZIP archive
/// with one JSON file per service and a README. Tokens and key hashes are never included.
#[utoipa::path(get, path = "/v1/me/personal-data", tag = "privacy",
    responses((status = 200, description = "A ZIP archive", content_type = "application/zip", body = Vec<u8>),
        (status = 401, body = chorus_kit::error::Problem), (status = 503, body = chorus_kit::error::Problem)))]
pub async fn my_personal_data(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Response> {
    let user_id = caller.user_id.clone();
    export(&state, &caller, &user_id).await
}

/// Everything Chorus holds about a person of the tenant (admins), as for
/// `GET /v1/me/personal-data`.
#[utoipa::path(get, path = "/v1/users/{user_id}/personal-data", tag = "privacy",
    params(("user_id" = String, Path)),
    responses((status = 200, description = "A ZIP archive", content_type = "application/zip", body = Vec<u8>),
        (status = 403, body = chorus_kit::error::Problem), (status = 404, body = chorus_kit::error::Problem),
        (status = 503, body = chorus_kit::error::Problem)))]
pub async fn personal_data(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(user_id): Path<String>,
) -> ServiceResult<Response> {
    export(&state, &caller, &user_id).await
}

#[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id))]
async fn export(state: &AppState, caller: &Caller, user_id: &str) -> ServiceResult<Response> {
    let request = PersonalDataRequest {
        user_id: user_id.to_string(),
    };
    // Every service answers, or there is no archive: a partial export would mislead.
    let parts: Vec<Value> = futures::future::try_join_all(
        SERVICES
            .iter()
            .map(|service| call(state, service, "personal_data", caller, &request)),
    )
    .await?;
    let known = parts[0]["users"]
        .as_array()
        .is_some_and(|users| !users.is_empty());
    if !known {
        return Err(ServiceError::not_found(format!("unknown user {user_id}")));
    }
    let exported_at = chrono::Utc::now();
    let mut archive = Zip::default();
    let readme = format!(
        "Personal data held by Chorus\n\nPerson: {user_id}\nTenant: {}\nExported: {}\n\n\
         One JSON file per service; each holds, per table, the rows about this person.\n\
         Access tokens of social accounts, API key hashes and device tokens are not included.\n",
        caller.tenant_id,
        exported_at.to_rfc3339()
    );
    archive.add("README.txt", readme.as_bytes());
    let mut rows = 0;
    for (service, part) in SERVICES.iter().zip(&parts) {
        rows += part
            .as_object()
            .map(|tables| {
                tables
                    .values()
                    .filter_map(Value::as_array)
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .unwrap_or_default();
        let json = serde_json::to_vec_pretty(part).unwrap_or_default();
        archive.add(&format!("{service}.json"), &json);
    }
    tracing::info!(
        rows,
        self_service = caller.user_id == user_id,
        "personal data exported"
    );
    let filename = format!(
        "chorus-personal-data-{}-{}.zip",
        sanitise(user_id),
        exported_at.format("%Y%m%d")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        archive.finish(),
    )
        .into_response())
}

fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A ZIP archive of stored (uncompressed) files, per APPNOTE 6.3: local headers, then the
/// central directory and its end record.
#[derive(Default)]
pub struct Zip {
    data: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
}

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

impl Zip {
    pub fn add(&mut self, name: &str, content: &[u8]) {
        let crc = CRC32.checksum(content);
        let offset = self.data.len() as u32;
        let size = content.len() as u32;
        // 00:00 on 1 January 1980, the format's epoch (dates are not part of the data).
        let (time, date) = (0u16, (1 << 5) | 1);
        // Bit 11: the name is UTF-8.
        let flags: u16 = 1 << 11;
        let mut local = Vec::with_capacity(30 + name.len());
        local.extend(0x0403_4b50u32.to_le_bytes());
        local.extend(20u16.to_le_bytes());
        local.extend(flags.to_le_bytes());
        local.extend(0u16.to_le_bytes()); // stored
        local.extend(time.to_le_bytes());
        local.extend((date as u16).to_le_bytes());
        local.extend(crc.to_le_bytes());
        local.extend(size.to_le_bytes());
        local.extend(size.to_le_bytes());
        local.extend((name.len() as u16).to_le_bytes());
        local.extend(0u16.to_le_bytes());
        local.extend(name.as_bytes());
        self.data.extend(&local);
        self.data.extend(content);
        let central = &mut self.central;
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // made by
        central.extend(20u16.to_le_bytes()); // needed
        central.extend(flags.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(time.to_le_bytes());
        central.extend((date as u16).to_le_bytes());
        central.extend(crc.to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 12]); // extra, comment, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
        self.entries += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        let offset = self.data.len() as u32;
        let size = self.central.len() as u32;
        self.data.extend(&self.central);
        self.data.extend(0x0605_4b50u32.to_le_bytes());
        self.data.extend([0u8; 4]); // disk numbers
        self.data.extend(self.entries.to_le_bytes());
        self.data.extend(self.entries.to_le_bytes());
        self.data.extend(size.to_le_bytes());
        self.data.extend(offset.to_le_bytes());
        self.data.extend(0u16.to_le_bytes());
        self.data
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn archive_entries_carry_the_standard_crc() {
        let mut zip = super::Zip::default();
        zip.add("a.txt", b"123456789");
        let bytes = zip.finish();
        // CRC-32 of "123456789" is the check value 0xCBF43926.
        assert_eq!(&bytes[14..18], &0xCBF4_3926u32.to_le_bytes());
        assert_eq!(
            &bytes[bytes.len() - 22..bytes.len() - 18],
            &[0x50, 0x4b, 0x05, 0x06]
        );
    }
}
