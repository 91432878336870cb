//! Compliance rules of a tenant, applied to posts and to advocates' captions: banned terms
//! (reported with the field and character position), mandatory disclosures appended to
//! shares of some content types, and topics that need approval.

use chorus_api::content::{ComplianceKind, ComplianceRule, ContentType, PostInput, Violation};

/// Character offset of each case-insensitive, whole-word occurrence of `term` in `text`.
pub fn find_term(text: &str, term: &str) -> Option<usize> {
    let haystack: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let needle: Vec<char> = term.trim().chars().flat_map(char::to_lowercase).collect();
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    (0..=haystack.len() - needle.len()).find(|&start| {
        haystack[start..start + needle.len()] == needle[..]
            && (start == 0 || !is_word(haystack[start - 1]) || !is_word(needle[0]))
            && (start + needle.len() == haystack.len()
                || !is_word(haystack[start + needle.len()])
                || !is_word(needle[needle.len() - 1]))
    })
}

/// Banned terms found in the given (field, text) pairs.
pub fn banned_terms(rules: &[ComplianceRule], fields: &[(String, &str)]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for rule in rules
        .iter()
        .filter(|rule| rule.kind == ComplianceKind::BannedTerm)
    {
        for (field, text) in fields {
            if let Some(position) = find_term(text, &rule.value) {
                violations.push(Violation {
                    rule_id: rule.id.clone(),
                    kind: rule.kind,
                    value: rule.value.clone(),
                    field: field.clone(),
                    position: Some(position),
                    message: format!(
                        "{field} contains the banned term {:?} at character {position}",
                        rule.value
                    ),
                });
            }
        }
    }
    violations
}

/// Every text of a post, named by field.
pub fn post_fields(post: &PostInput) -> Vec<(String, &str)> {
    let mut fields = vec![
        ("title".to_string(), post.title.as_str()),
        ("commentary".to_string(), post.commentary.as_str()),
    ];
    for caption in &post.captions {
        fields.push((
            format!("captions:{}", caption.network),
            caption.text.as_str(),
        ));
    }
    for variant in &post.variants {
        fields.push((
            format!("variants:{}:title", variant.language),
            variant.title.as_str(),
        ));
        fields.push((
            format!("variants:{}:commentary", variant.language),
            variant.commentary.as_str(),
        ));
        for caption in &variant.captions {
            fields.push((
                format!("variants:{}:captions:{}", variant.language, caption.network),
                caption.text.as_str(),
            ));
        }
    }
    fields
}

/// Whether a post with these topics must be approved before publication.
pub fn needs_approval(rules: &[ComplianceRule], topics: &[String]) -> bool {
    rules.iter().any(|rule| {
        rule.kind == ComplianceKind::ApprovalTopic
            && topics.iter().any(|topic| topic == &rule.value)
    })
}

/// The caption with every applicable disclosure appended once.
pub fn with_disclosures(
    rules: &[ComplianceRule],
    content_type: ContentType,
    caption: &str,
) -> String {
    let mut caption = caption.trim().to_string();
    for rule in rules
        .iter()
        .filter(|rule| rule.kind == ComplianceKind::MandatoryDisclosure)
    {
        let applies = rule.content_types.is_empty() || rule.content_types.contains(&content_type);
        if applies && find_term(&caption, &rule.value).is_none() {
            caption.push(' ');
            caption.push_str(rule.value.trim());
        }
    }
    caption
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: ComplianceKind, value: &str, types: &[ContentType]) -> ComplianceRule {
        ComplianceRule {
            id: format!("r-{value}"),
            kind,
            value: value.into(),
            content_types: types.to_vec(),
            created_by: "admin".into(),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn banned_terms_are_found_as_words_with_their_position() {
        assert_eq!(find_term("We Guarantee returns", "guarantee"), Some(3));
        assert_eq!(find_term("guaranteed", "guarantee"), None);
        assert_eq!(find_term("Zażółć gęślą", "gęślą"), Some(7));
        let rules = vec![rule(ComplianceKind::BannedTerm, "guarantee", &[])];
        let text = "Returns we guarantee";
        let found = banned_terms(&rules, &[("commentary".into(), text)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "commentary");
        assert_eq!(found[0].position, Some(11));
    }

    #[test]
    fn disclosures_are_appended_once_to_the_right_content() {
        let rules = vec![rule(
            ComplianceKind::MandatoryDisclosure,
            "#employee",
            &[ContentType::Brand],
        )];
        assert_eq!(
            with_disclosures(&rules, ContentType::Brand, "Love this product"),
            "Love this product #employee"
        );
        assert_eq!(
            with_disclosures(&rules, ContentType::Brand, "Love it #Employee"),
            "Love it #Employee"
        );
        assert_eq!(
            with_disclosures(&rules, ContentType::EmployerBranding, "Join us"),
            "Join us"
        );
        let approval = vec![rule(ComplianceKind::ApprovalTopic, "finance", &[])];
        assert!(needs_approval(&approval, &["finance".to_string()]));
        assert!(!needs_approval(&approval, &["jobs".to_string()]));
    }
}
