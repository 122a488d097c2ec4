/**
 * What Kafka accepts as a topic name: 1-249 characters of A-Z a-z 0-9 . _ -
 * (the broker refuses anything else). One rule for every setting, option
 * and flag that names a topic.
 */
export const TOPIC_NAME_MAX_LENGTH = 249;

/** Only characters a topic name may hold (any length, also none: a prefix). */
export const TOPIC_NAME_CHARS = /^[A-Za-z0-9._-]*$/;

/** A whole topic name. */
export const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** The rule, for a setting's refusal. */
export const TOPIC_NAME_RULE = 'must be 1-249 characters of A-Z a-z 0-9 . _ -';
