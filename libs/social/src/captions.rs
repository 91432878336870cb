//! Caption rules per network, as data.

use crate::Network;

/// Length rule of a network's post text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptionRule {
    pub network: Network,
    /// Longest text, in the network's own unit.
    pub max_length: usize,
    pub unit: LengthUnit,
    /// Whether a post needs an image.
    pub media_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    /// Unicode scalar values.
    Characters,
}

pub const RULES: &[CaptionRule] = &[CaptionRule {
    network: Network::Linkedin,
    max_length: 3_000,
    unit: LengthUnit::Characters,
    media_required: false,
}];

pub fn rule(network: Network) -> &'static CaptionRule {
    RULES
        .iter()
        .find(|rule| rule.network == network)
        .expect("every network has a caption rule")
}

/// Length of `text` in the network's unit.
pub fn length(network: Network, text: &str) -> usize {
    match rule(network).unit {
        LengthUnit::Characters => text.chars().count(),
    }
}

/// Checks a full post text (caption plus tracked link) against the network's rule.
pub fn validate(network: Network, text: &str) -> Result<(), String> {
    let rule = rule(network);
    if text.trim().is_empty() {
        return Err("caption must not be empty".to_string());
    }
    let length = length(network, text);
    if length > rule.max_length {
        return Err(format!(
            "caption is {length} characters with its tracked link; {network} allows {}",
            rule.max_length
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkedin_allows_3000_characters() {
        assert!(validate(Network::Linkedin, &"é".repeat(3_000)).is_ok());
        let error = validate(Network::Linkedin, &"a".repeat(3_001)).unwrap_err();
        assert!(error.contains("3001"), "{error}");
        assert!(validate(Network::Linkedin, "   ").is_err());
    }
}
