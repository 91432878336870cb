use chrono::{DateTime, TimeZone, Utc};

/// Converts a UTC time into a protobuf timestamp.
pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// Converts a protobuf timestamp into UTC time; a missing or invalid one becomes `None`.
pub fn from_timestamp(timestamp: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let timestamp = timestamp?;
    Utc.timestamp_opt(timestamp.seconds, timestamp.nanos.max(0) as u32)
        .single()
}
