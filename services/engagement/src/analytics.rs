//! Reports for the program (admins, curators) and for each advocate: figures over a period
//! in the tenant's time zone, grouped by share, post, advocate, department, network, topic or
//! day, with potential reach, segments and earned media value.

use crate::domain::{self, MetricSums};
use crate::entities::{member, observation, post, settings};
use crate::rpc::Engagement;
use chorus_api::Empty;
use chorus_api::engagement::{
    AnalyticsSettings, BreakdownQuery, BreakdownRow, Dimension, EmvExplained, Figures,
    NetworkRates, PeriodQuery, PersonalDashboard, ProgramSummary,
};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult};
use chrono::NaiveDate;
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const STAFF: &[Role] = &[Role::Admin, Role::Curator];

/// Sums per group, then per network, then per metric.
type Grouped = BTreeMap<String, BTreeMap<String, MetricSums>>;

struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

impl Engagement {
    pub async fn settings_of(&self, tenant_id: &str) -> Result<AnalyticsSettings, sea_orm::DbErr> {
        Ok(
            match settings::Entity::find_by_id(tenant_id.to_string())
                .one(&self.db)
                .await?
            {
                Some(row) => AnalyticsSettings {
                    rates: with_defaults(serde_json::from_str(&row.rates).unwrap_or_default()),
                    time_zone: row.time_zone,
                    currency: row.currency,
                    reaction_weight: row.reaction_weight,
                },
                None => AnalyticsSettings {
                    time_zone: "UTC".into(),
                    currency: "USD".into(),
                    reaction_weight: 0.25,
                    rates: domain::default_rates(),
                },
            },
        )
    }

    pub async fn get_settings(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<AnalyticsSettings> {
        caller.require_any(STAFF)?;
        Ok(self.settings_of(&caller.tenant_id).await?)
    }

    /// Time zone, currency, reaction weight and ad rates (admins).
    pub async fn put_settings(
        &self,
        caller: Caller,
        request: AnalyticsSettings,
    ) -> ServiceResult<AnalyticsSettings> {
        caller.require_any(&[Role::Admin])?;
        if !domain::valid_time_zone(&request.time_zone) {
            return Err(ServiceError::invalid(format!(
                "time_zone {} is not an IANA time zone",
                request.time_zone
            )));
        }
        if request.currency.len() != 3 || !request.currency.chars().all(|c| c.is_ascii_uppercase())
        {
            return Err(ServiceError::invalid(
                "currency must be an ISO 4217 code such as EUR",
            ));
        }
        if !(0.0..=100.0).contains(&request.reaction_weight) {
            return Err(ServiceError::invalid(
                "reaction_weight must be between 0 and 100",
            ));
        }
        for rate in &request.rates {
            if !(rate.cpm.is_finite() && rate.cpc.is_finite() && rate.cpm >= 0.0 && rate.cpc >= 0.0)
            {
                return Err(ServiceError::invalid(format!(
                    "rates of {} must be zero or more",
                    rate.network
                )));
            }
        }
        let row = settings::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            time_zone: Set(request.time_zone.clone()),
            currency: Set(request.currency.clone()),
            reaction_weight: Set(request.reaction_weight),
            rates: Set(serde_json::to_string(&request.rates).unwrap_or_else(|_| "[]".into())),
        };
        settings::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(settings::Column::TenantId)
                    .update_columns([
                        settings::Column::TimeZone,
                        settings::Column::Currency,
                        settings::Column::ReactionWeight,
                        settings::Column::Rates,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(request)
    }

    fn period(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        time_zone: &str,
    ) -> ServiceResult<Period> {
        let today =
            NaiveDate::parse_from_str(&domain::day_of(chrono::Utc::now(), time_zone), "%Y-%m-%d")
                .map_err(|error| ServiceError::internal(&error))?;
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - chrono::Duration::days(29));
        if from > to {
            return Err(ServiceError::invalid("from must not be after to"));
        }
        if (to - from).num_days() > 366 {
            return Err(ServiceError::invalid("a period is at most 366 days"));
        }
        Ok(Period { from, to })
    }

    /// Metric sums over the period, grouped by a column (or one group `all`).
    async fn grouped(
        &self,
        tenant_id: &str,
        period: &Period,
        user_id: Option<&str>,
        group: Option<observation::Column>,
    ) -> ServiceResult<Grouped> {
        let total = Expr::col(observation::Column::Delta)
            .sum()
            .cast_as(Alias::new("BIGINT"));
        let mut query = observation::Entity::find().select_only();
        query = match group {
            Some(column) => query.column_as(column, "grouping").group_by(column),
            None => query.column_as(Expr::val("all"), "grouping"),
        };
        query = query
            .column(observation::Column::Network)
            .column(observation::Column::Metric)
            .column_as(total, "total")
            .filter(observation::Column::TenantId.eq(tenant_id))
            .filter(observation::Column::Day.gte(period.from.to_string()))
            .filter(observation::Column::Day.lte(period.to.to_string()))
            .group_by(observation::Column::Network)
            .group_by(observation::Column::Metric);
        if let Some(user_id) = user_id {
            query = query.filter(observation::Column::UserId.eq(user_id));
        }
        let rows: Vec<(String, String, String, i64)> = query.into_tuple().all(&self.db).await?;
        let mut grouped = Grouped::new();
        for (key, network, metric, total) in rows {
            *grouped
                .entry(key)
                .or_default()
                .entry(network)
                .or_default()
                .entry(metric)
                .or_default() += total;
        }
        Ok(grouped)
    }

    /// (sharers, creators, potential reach) over the period.
    async fn people(
        &self,
        tenant_id: &str,
        period: &Period,
        user_id: Option<&str>,
    ) -> ServiceResult<(BTreeSet<String>, BTreeSet<String>, i64)> {
        let mut query = observation::Entity::find()
            .select_only()
            .column(observation::Column::UserId)
            .column(observation::Column::Network)
            .column(observation::Column::Metric)
            .column_as(
                Expr::col(observation::Column::Audience)
                    .max()
                    .cast_as(Alias::new("BIGINT")),
                "audience",
            )
            .filter(observation::Column::TenantId.eq(tenant_id))
            .filter(observation::Column::Day.gte(period.from.to_string()))
            .filter(observation::Column::Day.lte(period.to.to_string()))
            .filter(observation::Column::Metric.is_in(["share", "submission_approved"]))
            .group_by(observation::Column::UserId)
            .group_by(observation::Column::Network)
            .group_by(observation::Column::Metric);
        if let Some(user_id) = user_id {
            query = query.filter(observation::Column::UserId.eq(user_id));
        }
        let rows: Vec<(String, String, String, i64)> = query.into_tuple().all(&self.db).await?;
        let mut sharers = BTreeSet::new();
        let mut creators = BTreeSet::new();
        let mut reach = 0;
        for (user, _network, metric, audience) in rows {
            if metric == "share" {
                reach += audience;
                sharers.insert(user);
            } else {
                creators.insert(user);
            }
        }
        Ok((sharers, creators, reach))
    }

    fn explain(&self, settings: &AnalyticsSettings, value: f64) -> EmvExplained {
        EmvExplained {
            value,
            currency: settings.currency.clone(),
            formula: domain::FORMULA.to_string(),
            reaction_weight: settings.reaction_weight,
            rates: settings.rates.clone(),
        }
    }

    /// Rows of a breakdown with labels, ordered by key.
    async fn rows(
        &self,
        tenant_id: &str,
        by: Dimension,
        grouped: Grouped,
        settings: &AnalyticsSettings,
    ) -> ServiceResult<Vec<BreakdownRow>> {
        let grouped = if by == Dimension::Topic {
            let topics: HashMap<String, String> = post::Entity::find()
                .filter(post::Column::TenantId.eq(tenant_id))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| (row.post_id, row.topics))
                .collect();
            let mut by_topic = Grouped::new();
            for (post_id, networks) in grouped {
                let post_topics = topics.get(&post_id).cloned().unwrap_or_default();
                for topic in post_topics.split(',').filter(|topic| !topic.is_empty()) {
                    for (network, sums) in &networks {
                        let target = by_topic
                            .entry(topic.to_string())
                            .or_default()
                            .entry(network.clone())
                            .or_default();
                        for (metric, value) in sums {
                            *target.entry(metric.clone()).or_default() += value;
                        }
                    }
                }
            }
            by_topic
        } else {
            grouped
        };
        let labels: HashMap<String, String> = match by {
            Dimension::Post => post::Entity::find()
                .filter(post::Column::TenantId.eq(tenant_id))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| (row.post_id, row.title))
                .collect(),
            Dimension::Advocate => member::Entity::find()
                .filter(member::Column::TenantId.eq(tenant_id))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| (row.user_id, row.display_name))
                .collect(),
            _ => HashMap::new(),
        };
        Ok(grouped
            .into_iter()
            .filter(|(key, _)| !key.is_empty())
            .map(|(key, networks)| BreakdownRow {
                label: labels.get(&key).cloned().unwrap_or_else(|| key.clone()),
                figures: domain::figures(&networks, &settings.rates, settings.reaction_weight),
                key,
            })
            .collect())
    }

    fn column(by: Dimension) -> observation::Column {
        match by {
            Dimension::Share => observation::Column::ShareId,
            Dimension::Post | Dimension::Topic => observation::Column::PostId,
            Dimension::Advocate => observation::Column::UserId,
            Dimension::Department => observation::Column::Department,
            Dimension::Network => observation::Column::Network,
            Dimension::Day => observation::Column::Day,
        }
    }

    fn top(mut rows: Vec<BreakdownRow>) -> Vec<BreakdownRow> {
        rows.retain(|row| domain::engagement_score(&row.figures) > 0 || row.figures.shares > 0);
        rows.sort_by(|a, b| {
            domain::engagement_score(&b.figures)
                .cmp(&domain::engagement_score(&a.figures))
                .then_with(|| a.key.cmp(&b.key))
        });
        rows.truncate(10);
        rows
    }

    /// The program over a period (admins and curators).
    #[tracing::instrument(skip_all, fields(tenant_id = %caller.tenant_id))]
    pub async fn summary(
        &self,
        caller: Caller,
        query: PeriodQuery,
    ) -> ServiceResult<ProgramSummary> {
        caller.require_any(STAFF)?;
        let settings = self.settings_of(&caller.tenant_id).await?;
        let period = self.period(query.from, query.to, &settings.time_zone)?;
        let all = self.grouped(&caller.tenant_id, &period, None, None).await?;
        let figures = all
            .get("all")
            .map(|networks| domain::figures(networks, &settings.rates, settings.reaction_weight))
            .unwrap_or_default();
        let (sharers, creators, potential_reach) =
            self.people(&caller.tenant_id, &period, None).await?;
        let advocates = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(member::Column::Advocate.eq(true))
            .filter(member::Column::Active.eq(true))
            .count(&self.db)
            .await?;
        let engaged: BTreeSet<&String> = sharers.iter().chain(creators.iter()).collect();
        let lurkers = advocates.saturating_sub(engaged.len() as u64);
        let by_post = self
            .grouped(
                &caller.tenant_id,
                &period,
                None,
                Some(observation::Column::PostId),
            )
            .await?;
        let by_user = self
            .grouped(
                &caller.tenant_id,
                &period,
                None,
                Some(observation::Column::UserId),
            )
            .await?;
        Ok(ProgramSummary {
            from: period.from,
            to: period.to,
            time_zone: settings.time_zone.clone(),
            emv: self.explain(&settings, figures.emv),
            figures,
            potential_reach,
            advocates,
            sharers: sharers.len() as u64,
            creators: creators.len() as u64,
            lurkers,
            active_advocates_percent: if advocates == 0 {
                0.0
            } else {
                domain::round2(sharers.len() as f64 * 100.0 / advocates as f64)
            },
            top_posts: Self::top(
                self.rows(&caller.tenant_id, Dimension::Post, by_post, &settings)
                    .await?,
            ),
            top_advocates: Self::top(
                self.rows(&caller.tenant_id, Dimension::Advocate, by_user, &settings)
                    .await?,
            ),
        })
    }

    /// Figures grouped by one dimension (admins and curators).
    pub async fn breakdown(
        &self,
        caller: Caller,
        query: BreakdownQuery,
    ) -> ServiceResult<Vec<BreakdownRow>> {
        caller.require_any(STAFF)?;
        let settings = self.settings_of(&caller.tenant_id).await?;
        let period = self.period(query.from, query.to, &settings.time_zone)?;
        let grouped = self
            .grouped(
                &caller.tenant_id,
                &period,
                None,
                Some(Self::column(query.by)),
            )
            .await?;
        self.rows(&caller.tenant_id, query.by, grouped, &settings)
            .await
    }

    /// The caller's own dashboard: their reach, clicks and engagement, day by day.
    pub async fn personal(
        &self,
        caller: Caller,
        query: PeriodQuery,
    ) -> ServiceResult<PersonalDashboard> {
        let settings = self.settings_of(&caller.tenant_id).await?;
        let period = self.period(query.from, query.to, &settings.time_zone)?;
        let user = Some(caller.user_id.as_str());
        let all = self.grouped(&caller.tenant_id, &period, user, None).await?;
        let figures: Figures = all
            .get("all")
            .map(|networks| domain::figures(networks, &settings.rates, settings.reaction_weight))
            .unwrap_or_default();
        let (_, _, potential_reach) = self.people(&caller.tenant_id, &period, user).await?;
        let by_day = self
            .grouped(
                &caller.tenant_id,
                &period,
                user,
                Some(observation::Column::Day),
            )
            .await?;
        let by_post = self
            .grouped(
                &caller.tenant_id,
                &period,
                user,
                Some(observation::Column::PostId),
            )
            .await?;
        Ok(PersonalDashboard {
            user_id: caller.user_id.clone(),
            from: period.from,
            to: period.to,
            emv: self.explain(&settings, figures.emv),
            figures,
            potential_reach,
            trend: self
                .rows(&caller.tenant_id, Dimension::Day, by_day, &settings)
                .await?,
            top_posts: Self::top(
                self.rows(&caller.tenant_id, Dimension::Post, by_post, &settings)
                    .await?,
            ),
        })
    }
}

/// Rates for networks missing from a tenant's settings keep their defaults.
pub fn with_defaults(mut rates: Vec<NetworkRates>) -> Vec<NetworkRates> {
    for default in domain::default_rates() {
        if !rates.iter().any(|rate| rate.network == default.network) {
            rates.push(default);
        }
    }
    rates
}
