//! Field validation of posts and submissions, with messages for people.

use chorus_api::content::{MediaKind, MediaRef, PostInput, SuggestedCaption, Targeting};
use chorus_kit::ServiceError;

const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime"];
const MAX_IMAGE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_VIDEO_BYTES: u64 = 200 * 1024 * 1024;

pub fn http_url(field: &str, value: &str) -> Result<(), ServiceError> {
    match url::Url::parse(value) {
        Ok(link)
            if matches!(link.scheme(), "http" | "https")
                && link.host().is_some()
                && value.len() <= 2_000 =>
        {
            Ok(())
        }
        _ => Err(ServiceError::invalid(format!(
            "{field} must be an http(s) URL"
        ))),
    }
}

pub fn title(value: &str) -> Result<String, ServiceError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > 300 {
        return Err(ServiceError::invalid("title must be 1 to 300 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "title must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

pub fn commentary(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.chars().count() > 3_000 {
        return Err(ServiceError::invalid(format!(
            "{field} must be at most 3000 characters"
        )));
    }
    Ok(())
}

pub fn language(value: &str) -> Result<String, ServiceError> {
    let valid = !value.is_empty()
        && value.len() <= 35
        && value
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
    if !valid {
        return Err(ServiceError::invalid(format!(
            "language {value:?} must be a tag such as en or fr-CA"
        )));
    }
    Ok(value.to_ascii_lowercase())
}

/// Lower-cased, de-duplicated topics.
pub fn topics(values: &[String]) -> Result<Vec<String>, ServiceError> {
    let mut topics = Vec::new();
    for value in values {
        let topic = value.trim().to_lowercase();
        if topic.is_empty()
            || topic.chars().count() > 50
            || topic.contains(',')
            || topic.contains('%')
        {
            return Err(ServiceError::invalid(format!(
                "topic {value:?} must be 1 to 50 characters without , or %"
            )));
        }
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    if topics.len() > 20 {
        return Err(ServiceError::invalid("a post has at most 20 topics"));
    }
    Ok(topics)
}

pub fn media(items: &[MediaRef]) -> Result<(), ServiceError> {
    if items.len() > 20 {
        return Err(ServiceError::invalid("a post has at most 20 media"));
    }
    for (index, item) in items.iter().enumerate() {
        http_url(&format!("media[{index}].url"), &item.url)?;
        let (types, limit) = match item.kind {
            MediaKind::Image => (IMAGE_TYPES, MAX_IMAGE_BYTES),
            MediaKind::Video => (VIDEO_TYPES, MAX_VIDEO_BYTES),
        };
        if !types.contains(&item.mime_type.as_str()) {
            return Err(ServiceError::invalid(format!(
                "media[{index}].mime_type {} is not one of {}",
                item.mime_type,
                types.join(", ")
            )));
        }
        if item.size_bytes == 0 || item.size_bytes > limit {
            return Err(ServiceError::invalid(format!(
                "media[{index}].size_bytes must be 1 to {limit}"
            )));
        }
        if item.kind == MediaKind::Image && item.alt_text.trim().is_empty() {
            return Err(ServiceError::invalid(format!(
                "media[{index}].alt_text must describe the image"
            )));
        }
        if item.alt_text.chars().count() > 1_000 {
            return Err(ServiceError::invalid(format!(
                "media[{index}].alt_text must be at most 1000 characters"
            )));
        }
    }
    Ok(())
}

/// Suggested captions against each network's rule (the link counts, as it will be appended).
pub fn captions(
    field: &str,
    items: &[SuggestedCaption],
    has_image: bool,
) -> Result<(), ServiceError> {
    if items.len() > 30 {
        return Err(ServiceError::invalid(format!(
            "{field}: at most 30 suggested captions"
        )));
    }
    for (index, caption) in items.iter().enumerate() {
        let with_link = format!(
            "{}\n\nhttps://chorus.example/l/AAAAAAAAAAAA",
            caption.text.trim()
        );
        chorus_social::captions::validate_for(&caption.network, &with_link, has_image).map_err(
            |message| {
                ServiceError::invalid(format!("{field}[{index}] ({}): {message}", caption.network))
            },
        )?;
    }
    Ok(())
}

pub fn targeting(value: &Targeting) -> Result<(), ServiceError> {
    for item in value.departments.iter().chain(&value.locations) {
        if item.trim().is_empty() || item.contains(',') || item.contains('%') || item.len() > 100 {
            return Err(ServiceError::invalid(format!(
                "targeting value {item:?} must be 1 to 100 characters without , or %"
            )));
        }
    }
    for item in &value.languages {
        language(item)?;
    }
    Ok(())
}

/// Validates a whole post; returns the normalised title, topics and language.
pub fn post(input: &PostInput) -> Result<(String, Vec<String>, String), ServiceError> {
    let title = title(&input.title)?;
    commentary("commentary", &input.commentary)?;
    http_url("link_url", &input.link_url)?;
    let topics = topics(&input.topics)?;
    let language = language(&input.language)?;
    media(&input.media)?;
    let has_image = input.media.iter().any(|item| item.kind == MediaKind::Image);
    captions("captions", &input.captions, has_image)?;
    let mut languages = vec![language.clone()];
    for variant in &input.variants {
        let variant_language = self::language(&variant.language)?;
        if languages.contains(&variant_language) {
            return Err(ServiceError::invalid(format!(
                "two texts in language {variant_language}"
            )));
        }
        languages.push(variant_language.clone());
        self::title(&variant.title)?;
        commentary(
            &format!("variants[{variant_language}].commentary"),
            &variant.commentary,
        )?;
        captions(
            &format!("variants[{variant_language}].captions"),
            &variant.captions,
            has_image,
        )?;
    }
    targeting(&input.targeting)?;
    if let (Some(from), Some(until)) = (input.available_from, input.available_until)
        && until <= from
    {
        return Err(ServiceError::invalid(
            "available_until must be after available_from",
        ));
    }
    Ok((title, topics, language))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_api::content::ContentType;

    fn input() -> PostInput {
        serde_json::from_value(
            serde_json::json!({"title": "T", "commentary": "C", "link_url": "https://a.example/x",
            "content_type": "brand"}),
        )
        .unwrap()
    }

    #[test]
    fn posts_are_checked_field_by_field() {
        assert!(post(&input()).is_ok());
        let mut bad = input();
        bad.link_url = "javascript:alert(1)".into();
        assert!(post(&bad).unwrap_err().message.contains("link_url"));
        let mut bad = input();
        bad.media = vec![MediaRef {
            url: "https://a.example/i.png".into(),
            kind: MediaKind::Image,
            mime_type: "image/png".into(),
            size_bytes: 10,
            alt_text: "".into(),
        }];
        assert!(post(&bad).unwrap_err().message.contains("alt_text"));
        bad.media[0].mime_type = "application/pdf".into();
        assert!(post(&bad).unwrap_err().message.contains("mime_type"));
        let mut bad = input();
        bad.captions = vec![SuggestedCaption {
            network: "x".into(),
            text: "a".repeat(260),
        }];
        assert!(post(&bad).unwrap_err().message.contains("x allows 280"));
        let mut bad = input();
        bad.captions = vec![SuggestedCaption {
            network: "instagram".into(),
            text: "hi".into(),
        }];
        assert!(post(&bad).unwrap_err().message.contains("image"));
        let mut bad = input();
        bad.content_type = ContentType::Award;
        bad.variants = vec![chorus_api::content::Variant {
            language: "en".into(),
            title: "x".into(),
            commentary: "".into(),
            captions: vec![],
        }];
        assert!(post(&bad).unwrap_err().message.contains("two texts"));
    }
}
