//! Learned patterns: when each actor usually changes each namespace.
//!
//! The model is a histogram over the 168 hours of the week (UTC) of the
//! changes an actor made in a namespace that raised nothing. Once the actor
//! has made at least `learning.min_changes` such changes over at least
//! `learning.min_history`, a new change is *far outside the pattern* when no
//! past change fell within `learning.tolerance_hours` of the same hour of the
//! day on a day of the same kind (a weekday, or the weekend). Only namespaces without configured maintenance windows are judged
//! this way: configured windows always win. Changes that raised signals are
//! never learned, so an insider cannot teach the model their own hours.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::Learning;

const HOURS: usize = 24 * 7;

/// One actor's activity in one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityModel {
    /// Changes per hour of the week, Monday 00:00 UTC first.
    pub hours: Vec<u32>,
    /// Changes counted.
    pub total: u32,
    /// The first change counted.
    pub since: DateTime<Utc>,
}

fn hour_of_week(at: DateTime<Utc>) -> usize {
    at.weekday().num_days_from_monday() as usize * 24 + at.hour() as usize
}

/// The pattern's verdict on a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usual {
    /// Not enough history yet.
    Learning,
    /// Within the usual hours.
    Yes,
    /// Far outside them.
    No,
}

impl ActivityModel {
    /// An empty model starting at `since`.
    pub fn new(since: DateTime<Utc>) -> Self {
        Self { hours: vec![0; HOURS], total: 0, since }
    }

    /// Counts one change.
    pub fn learn(&mut self, at: DateTime<Utc>) {
        self.hours.resize(HOURS, 0);
        self.hours[hour_of_week(at)] += 1;
        self.total += 1;
        self.since = self.since.min(at);
    }

    /// Judges a change at `at`.
    pub fn usual(&self, at: DateTime<Utc>, learning: &Learning) -> Usual {
        if self.total < learning.min_changes || at - self.since < learning.min_history.0 {
            return Usual::Learning;
        }
        // Hours are compared across days of the same kind (weekdays, or the
        // weekend): twenty changes cannot cover 168 hours of the week, but
        // they do show which hours of a working day someone works.
        let weekend = |day: i64| day >= 5;
        let (day, hour) = (i64::from(at.weekday().num_days_from_monday()), i64::from(at.hour()));
        let tolerance = i64::from(learning.tolerance_hours);
        let near: u32 = (0..7)
            .filter(|d| weekend(*d) == weekend(day))
            .flat_map(|d| (hour - tolerance..=hour + tolerance).map(move |h| (d * 24 + h).rem_euclid(HOURS as i64)))
            .map(|i| usize::try_from(i).ok().and_then(|i| self.hours.get(i)).copied().unwrap_or(0))
            .sum();
        if near == 0 { Usual::No } else { Usual::Yes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_change_far_from_every_usual_hour_is_unusual_once_learned() {
        let learning = Learning::default();
        // Weekdays at 10:00 UTC for four weeks.
        let start: DateTime<Utc> = "2024-04-01T10:00:00Z".parse().unwrap();
        let mut model = ActivityModel::new(start);
        for day in 0..28 {
            let at = start + Duration::days(day);
            if at.weekday().num_days_from_monday() < 5 {
                model.learn(at);
            }
        }
        assert_eq!(model.total, 20);
        let next_wednesday: DateTime<Utc> = "2024-05-01T10:30:00Z".parse().unwrap();
        assert_eq!(model.usual(next_wednesday, &learning), Usual::Yes);
        assert_eq!(model.usual(next_wednesday + Duration::minutes(60), &learning), Usual::Yes);
        assert_eq!(model.usual(next_wednesday - Duration::hours(8), &learning), Usual::No);
        assert_eq!(model.usual("2024-05-04T10:00:00Z".parse().unwrap(), &learning), Usual::No);
        let young = ActivityModel { total: 5, ..model };
        assert_eq!(young.usual(next_wednesday - Duration::hours(8), &learning), Usual::Learning);
    }
}
