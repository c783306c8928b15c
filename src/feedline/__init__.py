"""feedline: event-driven, exactly-once file-to-warehouse ETL."""
