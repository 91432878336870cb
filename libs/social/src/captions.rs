//! Caption rules per network, as data: how each network counts a post's length, its limit,
//! and whether it needs an image. Used to validate curators' suggested captions and
//! advocates' share texts before anything is sent.

use unicode_segmentation::UnicodeSegmentation;

/// How a network measures text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    /// Unicode scalar values (LinkedIn, Facebook, Instagram).
    Characters,
    /// Characters with every URL counted as 23 (Mastodon).
    CharactersUrlsAs23,
    /// twitter-text v3 weighted length: most Latin text weighs 1, other scripts 2, every
    /// URL 23 (X).
    Weighted,
    /// Extended grapheme clusters (Bluesky).
    Graphemes,
}

/// Length rule of a network's post text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptionRule {
    /// Network name as in the API (`linkedin`, `x`, …).
    pub network: &'static str,
    pub max_length: usize,
    pub unit: LengthUnit,
    /// Whether a post must carry an image (Instagram).
    pub media_required: bool,
}

pub const RULES: &[CaptionRule] = &[
    CaptionRule {
        network: "linkedin",
        max_length: 3_000,
        unit: LengthUnit::Characters,
        media_required: false,
    },
    CaptionRule {
        network: "x",
        max_length: 280,
        unit: LengthUnit::Weighted,
        media_required: false,
    },
    CaptionRule {
        network: "facebook",
        max_length: 63_206,
        unit: LengthUnit::Characters,
        media_required: false,
    },
    CaptionRule {
        network: "instagram",
        max_length: 2_200,
        unit: LengthUnit::Characters,
        media_required: true,
    },
    CaptionRule {
        network: "mastodon",
        max_length: 500,
        unit: LengthUnit::CharactersUrlsAs23,
        media_required: false,
    },
    CaptionRule {
        network: "bluesky",
        max_length: 300,
        unit: LengthUnit::Graphemes,
        media_required: false,
    },
];

/// The rule of a network, by name.
pub fn rule_for(network: &str) -> Option<&'static CaptionRule> {
    RULES.iter().find(|rule| rule.network == network)
}

/// The rule of a network Chorus publishes to.
pub fn rule(network: crate::Network) -> &'static CaptionRule {
    rule_for(network.as_str()).expect("every network has a caption rule")
}

/// Length the URLs of a text are counted as on X and Mastodon.
const URL_WEIGHT: usize = 23;

/// Byte ranges of http(s) URLs in `text`.
fn url_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut search_from = 0;
    while let Some(found) = find_url_start(&text[search_from..]) {
        let start = search_from + found;
        let end = text[start..]
            .find(char::is_whitespace)
            .map(|offset| start + offset)
            .unwrap_or(text.len());
        spans.push((start, end));
        search_from = end;
    }
    spans
}

fn find_url_start(text: &str) -> Option<usize> {
    match (text.find("http://"), text.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// twitter-text v3: code points in these ranges weigh 100, all others 200 (scale 100).
fn x_weight(character: char) -> usize {
    let code = character as u32;
    let light = matches!(code, 0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247);
    if light { 1 } else { 2 }
}

/// Length of `text` in the network's unit.
pub fn length(rule: &CaptionRule, text: &str) -> usize {
    match rule.unit {
        LengthUnit::Characters => text.chars().count(),
        LengthUnit::Graphemes => text.graphemes(true).count(),
        LengthUnit::CharactersUrlsAs23 | LengthUnit::Weighted => {
            let mut total = 0;
            let mut cursor = 0;
            for (start, end) in url_spans(text) {
                total += measure_plain(rule.unit, &text[cursor..start]) + URL_WEIGHT;
                cursor = end;
            }
            total + measure_plain(rule.unit, &text[cursor..])
        }
    }
}

fn measure_plain(unit: LengthUnit, text: &str) -> usize {
    match unit {
        LengthUnit::Weighted => text.chars().map(x_weight).sum(),
        _ => text.chars().count(),
    }
}

/// Checks a full post text (caption plus tracked link) against a network's rule.
pub fn validate_for(network: &str, text: &str, has_image: bool) -> Result<(), String> {
    let rule = rule_for(network).ok_or_else(|| format!("unknown network {network}"))?;
    if text.trim().is_empty() {
        return Err("caption must not be empty".to_string());
    }
    let length = length(rule, text);
    if length > rule.max_length {
        let unit = match rule.unit {
            LengthUnit::Characters => "characters",
            LengthUnit::CharactersUrlsAs23 => "characters (links count 23)",
            LengthUnit::Weighted => "weighted characters (links count 23)",
            LengthUnit::Graphemes => "graphemes",
        };
        return Err(format!(
            "caption is {length} {unit}; {network} allows {}",
            rule.max_length
        ));
    }
    if rule.media_required && !has_image {
        return Err(format!("{network} posts need an image"));
    }
    Ok(())
}

/// Checks a text for a network Chorus publishes to.
pub fn validate(network: crate::Network, text: &str) -> Result<(), String> {
    let rule = rule(network);
    let length = length(rule, text);
    if text.trim().is_empty() {
        return Err("caption must not be empty".to_string());
    }
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
        assert!(validate(crate::Network::Linkedin, &"é".repeat(3_000)).is_ok());
        let error = validate(crate::Network::Linkedin, &"a".repeat(3_001)).unwrap_err();
        assert!(error.contains("3001"), "{error}");
        assert!(validate(crate::Network::Linkedin, "   ").is_err());
    }

    #[test]
    fn x_counts_urls_as_23_and_cjk_as_2() {
        let x = rule_for("x").unwrap();
        assert_eq!(length(x, "hello"), 5);
        assert_eq!(
            length(
                x,
                "see https://example.com/a/very/long/path/that/goes/on?and=on"
            ),
            4 + 23
        );
        assert_eq!(length(x, "日本語"), 6);
        let at_limit = format!("{} https://example.com", "a".repeat(256));
        assert_eq!(length(x, &at_limit), 280);
        assert!(validate_for("x", &at_limit, false).is_ok());
        assert!(
            validate_for("x", &format!("a{at_limit}"), false)
                .unwrap_err()
                .contains("281")
        );
    }

    #[test]
    fn bluesky_counts_graphemes_and_instagram_needs_an_image() {
        let bluesky = rule_for("bluesky").unwrap();
        assert_eq!(length(bluesky, "👨‍👩‍👧‍👦 e\u{301}"), 3);
        assert!(validate_for("bluesky", &"👍".repeat(300), false).is_ok());
        assert!(validate_for("bluesky", &"👍".repeat(301), false).is_err());
        assert!(
            validate_for("instagram", "a picture", false)
                .unwrap_err()
                .contains("image")
        );
        assert!(validate_for("instagram", "a picture", true).is_ok());
        let mastodon = rule_for("mastodon").unwrap();
        assert_eq!(
            length(
                mastodon,
                "x https://example.com/very/long/address/indeed/it/is"
            ),
            2 + 23
        );
    }
}
