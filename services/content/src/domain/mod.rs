//! Pure content logic: validation, lifecycle, compliance, survey periods and eNPS.

pub mod compliance;
pub mod lifecycle;
pub mod surveys;
pub mod validate;

/// Lists stored as `,a,b,` so that `LIKE '%,a,%'` matches whole items; empty means none.
pub fn encode_list<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let joined: Vec<String> = items
        .into_iter()
        .map(|item| item.as_ref().to_string())
        .collect();
    if joined.is_empty() {
        String::new()
    } else {
        format!(",{},", joined.join(","))
    }
}

pub fn decode_list(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_with_delimiters() {
        assert_eq!(encode_list(["a", "b"]), ",a,b,");
        assert_eq!(encode_list(Vec::<String>::new()), "");
        assert_eq!(decode_list(",a,b,"), vec!["a", "b"]);
        assert!(decode_list("").is_empty());
    }
}
