//! Survey periods, answer validation and eNPS.

use chorus_api::surveys::{Answer, Enps, Question, QuestionKind, Recurrence};
use chrono::{DateTime, Datelike, Utc};

/// The period an answer given at `at` belongs to.
pub fn period(recurrence: Recurrence, at: DateTime<Utc>) -> String {
    match recurrence {
        Recurrence::Once => "once".to_string(),
        Recurrence::Weekly => {
            let week = at.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        }
        Recurrence::Monthly => format!("{}-{:02}", at.year(), at.month()),
        Recurrence::Quarterly => format!("{}-Q{}", at.year(), (at.month() - 1) / 3 + 1),
    }
}

/// eNPS from 0-10 scores: % promoters (9-10) minus % detractors (0-6).
pub fn enps(scores: &[i64]) -> Option<Enps> {
    if scores.is_empty() {
        return None;
    }
    let promoters = scores.iter().filter(|score| **score >= 9).count() as u64;
    let detractors = scores.iter().filter(|score| **score <= 6).count() as u64;
    let passives = scores.len() as u64 - promoters - detractors;
    let total = scores.len() as f64;
    let score = ((promoters as f64 - detractors as f64) * 100.0 / total * 10.0).round() / 10.0;
    Some(Enps {
        score,
        promoters,
        passives,
        detractors,
    })
}

/// Checks a survey's questions.
pub fn validate_questions(questions: &[Question]) -> Result<(), String> {
    if questions.is_empty() || questions.len() > 10 {
        return Err("a survey has 1 to 10 questions".into());
    }
    let mut ids = std::collections::HashSet::new();
    for question in questions {
        if question.id.is_empty() || question.id.len() > 50 || !ids.insert(question.id.as_str()) {
            return Err(format!(
                "question id {:?} must be 1 to 50 characters and unique",
                question.id
            ));
        }
        if question.kind != QuestionKind::Enps && question.text.trim().is_empty() {
            return Err(format!("question {} needs a text", question.id));
        }
        match question.kind {
            QuestionKind::Choice if question.options.len() < 2 || question.options.len() > 20 => {
                return Err(format!("question {} needs 2 to 20 options", question.id));
            }
            QuestionKind::Scale => {
                let (min, max) = (question.min.unwrap_or(1), question.max.unwrap_or(5));
                if min >= max || max - min > 100 {
                    return Err(format!(
                        "question {} needs min < max (at most 100 apart)",
                        question.id
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks answers against the questions; every question must be answered exactly once.
pub fn validate_answers(questions: &[Question], answers: &[Answer]) -> Result<(), String> {
    for question in questions {
        let given: Vec<&Answer> = answers
            .iter()
            .filter(|answer| answer.question_id == question.id)
            .collect();
        let [answer] = given.as_slice() else {
            return Err(format!("answer question {} exactly once", question.id));
        };
        let valid = match question.kind {
            QuestionKind::Enps => answer
                .value
                .as_i64()
                .is_some_and(|value| (0..=10).contains(&value)),
            QuestionKind::Scale => {
                let (min, max) = (question.min.unwrap_or(1), question.max.unwrap_or(5));
                answer
                    .value
                    .as_i64()
                    .is_some_and(|value| (min..=max).contains(&value))
            }
            QuestionKind::Choice => answer
                .value
                .as_str()
                .is_some_and(|value| question.options.iter().any(|o| o == value)),
            QuestionKind::Text => answer
                .value
                .as_str()
                .is_some_and(|value| value.chars().count() <= 2_000),
        };
        if !valid {
            return Err(format!(
                "answer to {} is not valid for a {:?} question",
                question.id, question.kind
            ));
        }
    }
    if answers.len() != questions.len() {
        return Err("answers name questions that are not in the survey".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn enps_is_promoters_minus_detractors_in_percent() {
        // 3 promoters, 1 passive, 2 detractors of 6: (3 - 2) / 6 = 16.7.
        let result = enps(&[10, 9, 9, 8, 6, 0]).unwrap();
        assert_eq!(
            (result.promoters, result.passives, result.detractors),
            (3, 1, 2)
        );
        assert_eq!(result.score, 16.7);
        assert_eq!(enps(&[0, 1, 2, 3, 4]).unwrap().score, -100.0);
        assert_eq!(enps(&[]), None);
    }

    #[test]
    fn periods_follow_the_recurrence() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        assert_eq!(period(Recurrence::Weekly, at), "2026-W48");
        assert_eq!(period(Recurrence::Monthly, at), "2026-11");
        assert_eq!(period(Recurrence::Quarterly, at), "2026-Q4");
        assert_eq!(period(Recurrence::Once, at), "once");
    }
}
