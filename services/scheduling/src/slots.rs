//! "My next slot": each advocate's weekly posting slots in their time zone. A share asked
//! for the next slot takes the first slot ahead that no share of theirs holds; cancelling a
//! share, or moving it to a time of its own, frees its slot.

use crate::entities::{posting_slots, share};
use crate::rpc::Scheduling;
use chorus_api::Empty;
use chorus_api::scheduling::{PostingSlot, PostingSlots};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use std::collections::HashSet;

const MAX_SLOTS: usize = 28;
/// How far ahead a free slot is looked for.
const HORIZON_DAYS: i64 = 366;
/// A slot closer than this is not offered (the share could not be prepared in time).
const LEAD: chrono::Duration = chrono::Duration::minutes(1);
/// Free slots shown with the settings.
const UPCOMING: usize = 5;

const DAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

/// A validated weekly schedule.
#[derive(Debug, Clone)]
pub struct Weekly {
    zone: chrono_tz::Tz,
    slots: Vec<(Weekday, NaiveTime)>,
}

impl Weekly {
    pub fn parse(time_zone: &str, slots: &[PostingSlot]) -> ServiceResult<Weekly> {
        let zone: chrono_tz::Tz = time_zone.parse().map_err(|_| {
            ServiceError::invalid(format!(
                "time_zone: {time_zone} is not an IANA time zone such as Europe/Paris"
            ))
        })?;
        if slots.len() > MAX_SLOTS {
            return Err(ServiceError::invalid(format!("slots: at most {MAX_SLOTS}")));
        }
        let mut parsed = Vec::with_capacity(slots.len());
        for slot in slots {
            let day = DAYS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(slot.day.trim()))
                .map(|(_, day)| *day)
                .ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "slots: {} is not a day (monday … sunday)",
                        slot.day
                    ))
                })?;
            let time = NaiveTime::parse_from_str(slot.time.trim(), "%H:%M").map_err(|_| {
                ServiceError::invalid(format!("slots: {} is not a time such as 08:30", slot.time))
            })?;
            if parsed.contains(&(day, time)) {
                return Err(ServiceError::invalid(format!(
                    "slots: {} {} is given twice",
                    slot.day, slot.time
                )));
            }
            parsed.push((day, time));
        }
        parsed.sort_by_key(|(day, time)| (day.num_days_from_monday(), *time));
        Ok(Weekly {
            zone,
            slots: parsed,
        })
    }

    fn stored(&self) -> String {
        self.slots
            .iter()
            .map(|(day, time)| format!("{} {}", day_name(*day), time.format("%H:%M")))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn from_row(row: &posting_slots::Model) -> Option<Weekly> {
        let slots: Vec<PostingSlot> = row
            .slots
            .split(',')
            .filter_map(|slot| slot.split_once(' '))
            .map(|(day, time)| PostingSlot {
                day: day.to_string(),
                time: time.to_string(),
            })
            .collect();
        Weekly::parse(&row.time_zone, &slots).ok()
    }

    fn view(&self) -> Vec<PostingSlot> {
        self.slots
            .iter()
            .map(|(day, time)| PostingSlot {
                day: day_name(*day).to_string(),
                time: time.format("%H:%M").to_string(),
            })
            .collect()
    }

    /// The slot instants from `after` on, in order. A local time that does not exist (the
    /// hour skipped when clocks go forward) is skipped; an ambiguous one takes its first
    /// occurrence.
    pub fn instants(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let first_day = after.with_timezone(&self.zone).date_naive();
        (0..HORIZON_DAYS)
            .filter_map(move |offset| first_day.checked_add_signed(chrono::Duration::days(offset)))
            .flat_map(move |date| {
                self.slots
                    .iter()
                    .filter(move |(day, _)| *day == date.weekday())
                    .filter_map(move |(_, time)| {
                        self.zone
                            .from_local_datetime(&date.and_time(*time))
                            .earliest()
                            .map(|local| local.with_timezone(&Utc))
                    })
            })
            .filter(move |instant| *instant >= after)
    }
}

fn day_name(day: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, d)| *d == day)
        .map(|(name, _)| *name)
        .unwrap_or("monday")
}

impl Scheduling {
    async fn weekly(&self, tenant_id: &str, user_id: &str) -> ServiceResult<Option<Weekly>> {
        Ok(
            posting_slots::Entity::find_by_id((tenant_id.to_string(), user_id.to_string()))
                .one(&self.db)
                .await?
                .as_ref()
                .and_then(Weekly::from_row),
        )
    }

    /// The slots this advocate's shares hold from `after` on.
    async fn held<C: ConnectionTrait>(
        conn: &C,
        tenant_id: &str,
        user_id: &str,
        after: DateTime<Utc>,
    ) -> ServiceResult<HashSet<DateTime<Utc>>> {
        Ok(share::Entity::find()
            .filter(share::Column::TenantId.eq(tenant_id))
            .filter(share::Column::UserId.eq(user_id))
            .filter(share::Column::SlotAt.gte(after))
            .all(conn)
            .await?
            .into_iter()
            .filter_map(|share| share.slot_at)
            .collect())
    }

    /// The advocate's next free slot, skipping `also_taken`.
    pub async fn next_free_slot(
        &self,
        caller: &Caller,
        also_taken: &HashSet<DateTime<Utc>>,
    ) -> ServiceResult<DateTime<Utc>> {
        let weekly = self
            .weekly(&caller.tenant_id, &caller.user_id)
            .await?
            .filter(|weekly| !weekly.slots.is_empty())
            .ok_or_else(|| {
                ServiceError::invalid("next_slot: set your posting slots first (PUT /v1/me/slots)")
            })?;
        let after = Utc::now() + LEAD;
        let held = Self::held(&self.db, &caller.tenant_id, &caller.user_id, after).await?;
        weekly
            .instants(after)
            .find(|instant| !held.contains(instant) && !also_taken.contains(instant))
            .ok_or_else(|| {
                ServiceError::invalid("next_slot: every slot of the coming year is taken")
            })
    }

    pub async fn get_slots(&self, caller: Caller, _request: Empty) -> ServiceResult<PostingSlots> {
        caller.require_any(&[Role::Advocate])?;
        let Some(weekly) = self.weekly(&caller.tenant_id, &caller.user_id).await? else {
            return Ok(PostingSlots {
                time_zone: "UTC".to_string(),
                slots: Vec::new(),
                upcoming: Vec::new(),
            });
        };
        self.slots_view(&caller, &weekly).await
    }

    async fn slots_view(&self, caller: &Caller, weekly: &Weekly) -> ServiceResult<PostingSlots> {
        let after = Utc::now() + LEAD;
        let held = Self::held(&self.db, &caller.tenant_id, &caller.user_id, after).await?;
        Ok(PostingSlots {
            time_zone: weekly.zone.name().to_string(),
            slots: weekly.view(),
            upcoming: weekly
                .instants(after)
                .filter(|instant| !held.contains(instant))
                .take(UPCOMING)
                .collect(),
        })
    }

    /// Replaces the advocate's slots. Shares already in a slot keep their time.
    pub async fn set_slots(
        &self,
        caller: Caller,
        request: PostingSlots,
    ) -> ServiceResult<PostingSlots> {
        caller.require_any(&[Role::Advocate])?;
        let weekly = Weekly::parse(&request.time_zone, &request.slots)?;
        let row = posting_slots::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            user_id: Set(caller.user_id.clone()),
            time_zone: Set(weekly.zone.name().to_string()),
            slots: Set(weekly.stored()),
            updated_at: Set(Utc::now()),
        };
        posting_slots::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    posting_slots::Column::TenantId,
                    posting_slots::Column::UserId,
                ])
                .update_columns([
                    posting_slots::Column::TimeZone,
                    posting_slots::Column::Slots,
                    posting_slots::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        tracing::info!(slots = weekly.slots.len(), time_zone = %weekly.zone.name(), "posting slots set");
        self.slots_view(&caller, &weekly).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(day: &str, time: &str) -> PostingSlot {
        PostingSlot {
            day: day.into(),
            time: time.into(),
        }
    }

    #[test]
    fn slots_follow_the_local_clock_across_a_change_of_hour() {
        let weekly = Weekly::parse(
            "Europe/Paris",
            &[slot("sunday", "08:30"), slot("Monday", "12:00")],
        )
        .unwrap();
        // Saturday 25 October 2025, noon UTC: the clocks go back on Sunday at 03:00.
        let after = Utc.with_ymd_and_hms(2025, 10, 25, 12, 0, 0).unwrap();
        let next: Vec<_> = weekly.instants(after).take(3).collect();
        // Sunday 08:30 in winter time is 07:30 UTC; Monday noon is 11:00 UTC.
        assert_eq!(
            next[0],
            Utc.with_ymd_and_hms(2025, 10, 26, 7, 30, 0).unwrap()
        );
        assert_eq!(
            next[1],
            Utc.with_ymd_and_hms(2025, 10, 27, 11, 0, 0).unwrap()
        );
        assert_eq!(
            next[2],
            Utc.with_ymd_and_hms(2025, 11, 2, 7, 30, 0).unwrap()
        );
        // The hour that does not exist in spring is skipped, not moved.
        let gap = Weekly::parse("Europe/Paris", &[slot("sunday", "02:30")]).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        assert_eq!(
            gap.instants(after).next().unwrap(),
            Utc.with_ymd_and_hms(2026, 4, 5, 0, 30, 0).unwrap()
        );
    }

    #[test]
    fn bad_slots_are_refused_with_the_reason() {
        for (zone, slots, says) in [
            ("Mars/Olympus", vec![slot("monday", "08:00")], "time_zone"),
            ("UTC", vec![slot("someday", "08:00")], "not a day"),
            ("UTC", vec![slot("monday", "25:00")], "not a time"),
            (
                "UTC",
                vec![slot("monday", "08:00"), slot("Monday", "08:00")],
                "twice",
            ),
        ] {
            let error = Weekly::parse(zone, &slots).unwrap_err();
            assert!(error.message.contains(says), "{}", error.message);
        }
    }
}
