WITH "agg__orders" AS (
  SELECT
    "customer_id" AS "k",
    SUM(
      CAST(CASE
        WHEN ABS("amount") < 1e15
        THEN CAST(FLOOR("amount") AS DECIMAL(18, 0)) + CAST("amount" - FLOOR("amount") AS DECIMAL(38, 9))
      END AS DECIMAL(38, 9))
    ) FILTER(WHERE
      "ordered_at" >= CAST('2025-11-24 00:00:00' AS TIMESTAMP)
      AND COALESCE((
        (
          "status" COLLATE "C"
        ) = 'completed'
      ), FALSE)) AS "agg_0",
    SUM(
      CAST(CASE
        WHEN ABS("amount") < 1e15
        THEN CAST(FLOOR("amount") AS DECIMAL(18, 0)) + CAST("amount" - FLOOR("amount") AS DECIMAL(38, 9))
      END AS DECIMAL(38, 9))
    ) FILTER(WHERE
      "ordered_at" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP)
      AND COALESCE((
        (
          "status" COLLATE "C"
        ) = 'completed'
      ), FALSE)) AS "agg_9",
    COUNT(
      CAST(CASE
        WHEN ABS("amount") < 1e15
        THEN CAST(FLOOR("amount") AS DECIMAL(18, 0)) + CAST("amount" - FLOOR("amount") AS DECIMAL(38, 9))
      END AS DECIMAL(38, 9))
    ) FILTER(WHERE
      "ordered_at" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP)
      AND COALESCE((
        (
          "status" COLLATE "C"
        ) = 'completed'
      ), FALSE)) AS "agg_9_n"
  FROM "main"."orders"
  WHERE
    "ordered_at" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "ordered_at" >= CAST('2025-11-24 00:00:00' AS TIMESTAMP)
  GROUP BY
    "customer_id"
), "agg__purchase" AS (
  SELECT
    "customer_id" AS "k",
    MAX("occurred_at") AS "agg_1",
    COUNT(*) AS "agg_3",
    COUNT(*) FILTER(WHERE
      "occurred_at" >= CAST('2026-08-26 00:00:00' AS TIMESTAMP)) AS "agg_4",
    COUNT(*) FILTER(WHERE
      "occurred_at" >= CAST('2026-11-17 00:00:00' AS TIMESTAMP)) AS "agg_8"
  FROM "main"."events"
  WHERE
    "occurred_at" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "event_type" = 'purchase'
  GROUP BY
    "customer_id"
), "agg__email_open" AS (
  SELECT
    "customer_id" AS "k",
    COUNT(*) FILTER(WHERE
      "occurred_at" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP)) AS "agg_2",
    COUNT(*) FILTER(WHERE
      "occurred_at" >= CAST('2026-09-25 00:00:00' AS TIMESTAMP)) AS "agg_5",
    COUNT(*) FILTER(WHERE
      "occurred_at" >= CAST('2026-08-26 00:00:00' AS TIMESTAMP)) AS "agg_6"
  FROM "main"."events"
  WHERE
    "occurred_at" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "occurred_at" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP)
    AND "event_type" = 'email_open'
  GROUP BY
    "customer_id"
), "agg__add_to_cart" AS (
  SELECT
    "customer_id" AS "k",
    COUNT(*) FILTER(WHERE
      "occurred_at" >= CAST('2026-11-17 00:00:00' AS TIMESTAMP)) AS "agg_7"
  FROM "main"."events"
  WHERE
    "occurred_at" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "occurred_at" >= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
    AND "event_type" = 'add_to_cart'
  GROUP BY
    "customer_id"
), "consent_latest" AS (
  SELECT
    "k",
    MAX(CASE WHEN "channel" = 'ads' THEN CAST("opted_in" AS INT) END) AS "c__ads",
    MAX(CASE WHEN "channel" = 'email' THEN CAST("opted_in" AS INT) END) AS "c__email"
  FROM (
    SELECT
      "customer_id" AS "k",
      "channel" AS "channel",
      "opted_in" AS "opted_in",
      ROW_NUMBER() OVER (
        PARTITION BY "customer_id", "channel"
        ORDER BY "updated_at" DESC NULLS LAST, "opted_in" ASC
      ) AS "rn"
    FROM "main"."consents"
    WHERE
      "updated_at" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
      AND "channel" IN ('ads', 'email')
  ) AS "ranked"
  WHERE
    "rn" = 1
  GROUP BY
    "k"
), "base" AS (
  SELECT
    "c"."customer_id" AS "k",
    "c"."country" AS "a__country",
    "c"."email" AS "a__email",
    "c"."is_employee" AS "a__is_employee",
    "c"."last_seen_at" AS "a__last_seen_at",
    CAST(CASE
      WHEN ABS("c"."lifetime_value") < 1e15
      THEN CAST(FLOOR("c"."lifetime_value") AS DECIMAL(18, 0)) + CAST("c"."lifetime_value" - FLOOR("c"."lifetime_value") AS DECIMAL(38, 9))
    END AS DECIMAL(38, 9)) AS "a__lifetime_value",
    "c"."plan" AS "a__plan",
    "c"."signup_at" AS "a__signup_at",
    COALESCE("agg__orders"."agg_0", 0) AS "agg_0",
    "agg__orders"."agg_9" AS "agg_9",
    "agg__orders"."agg_9_n" AS "agg_9_n",
    "agg__purchase"."agg_1" AS "agg_1",
    COALESCE("agg__purchase"."agg_3", 0) AS "agg_3",
    COALESCE("agg__purchase"."agg_4", 0) AS "agg_4",
    COALESCE("agg__purchase"."agg_8", 0) AS "agg_8",
    COALESCE("agg__email_open"."agg_2", 0) AS "agg_2",
    COALESCE("agg__email_open"."agg_5", 0) AS "agg_5",
    COALESCE("agg__email_open"."agg_6", 0) AS "agg_6",
    COALESCE("agg__add_to_cart"."agg_7", 0) AS "agg_7",
    "consent_latest"."c__ads" AS "c__ads",
    "consent_latest"."c__email" AS "c__email"
  FROM "main"."customers" AS "c"
  LEFT JOIN "agg__orders"
    ON "agg__orders"."k" = "c"."customer_id"
  LEFT JOIN "agg__purchase"
    ON "agg__purchase"."k" = "c"."customer_id"
  LEFT JOIN "agg__email_open"
    ON "agg__email_open"."k" = "c"."customer_id"
  LEFT JOIN "agg__add_to_cart"
    ON "agg__add_to_cart"."k" = "c"."customer_id"
  LEFT JOIN "consent_latest"
    ON "consent_latest"."k" = "c"."customer_id"
), "level_0" AS (
  SELECT
    *,
    (
      (
        (
          COALESCE((
            "a__lifetime_value" >= CAST('2000' AS DECIMAL(38, 9))
          ), FALSE)
          OR COALESCE((
            "agg_0" > CAST('500' AS DECIMAL(38, 9))
          ), FALSE)
        )
        AND NOT COALESCE((
          "a__is_employee" = TRUE
        ), FALSE)
      )
    )
    AND COALESCE("c__email", 0) = 1 AS "m__vip",
    (
      (
        COALESCE((
          "agg_1" < CAST('2025-11-24 00:00:00' AS TIMESTAMP)
        ), FALSE)
        AND COALESCE((
          "a__last_seen_at" < CAST('2026-05-28 00:00:00' AS TIMESTAMP)
        ), FALSE)
      )
    ) AS "m__churned",
    (
      COALESCE(
        (
          "a__last_seen_at" >= CAST('2026-10-25 00:00:00' AS TIMESTAMP)
          AND "a__last_seen_at" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
        ),
        FALSE
      )
    ) AS "m__active_30d",
    (
      COALESCE((
        "agg_6" >= CAST('3' AS DECIMAL(38, 9))
      ), FALSE)
    ) AS "m__engaged_email",
    (
      COALESCE((
        "agg_4" >= CAST('2' AS DECIMAL(38, 9))
      ), FALSE)
    ) AS "m__repeat_buyers",
    (
      (
        COALESCE((
          (
            "a__plan" COLLATE "C"
          ) = 'pro'
        ), FALSE)
        AND COALESCE((
          "a__lifetime_value" >= CAST('1000' AS DECIMAL(38, 9))
        ), FALSE)
        AND NOT COALESCE((
          "a__is_employee" = TRUE
        ), FALSE)
      )
    )
    AND COALESCE("c__email", 0) = 1 AS "m__sales_priority",
    (
      (
        COALESCE((
          "agg_7" >= CAST('1' AS DECIMAL(38, 9))
        ), FALSE)
        AND COALESCE((
          "agg_8" = CAST('0' AS DECIMAL(38, 9))
        ), FALSE)
      )
    )
    AND COALESCE("c__ads", 1) = 1 AS "m__high_intent",
    (
      COALESCE((
        "agg_9" > CAST('150' AS DECIMAL(38, 9)) * "agg_9_n"
      ), FALSE)
    ) AS "m__big_basket",
    (
      (
        COALESCE((
          (
            "a__plan" COLLATE "C"
          ) = 'pro'
        ), FALSE)
        AND COALESCE((
          (
            "a__country" COLLATE "C"
          ) IN ('DE', 'FR', 'NL', 'IT', 'ES')
        ), FALSE)
      )
    ) AS "m__pro_plan_eu",
    (
      COALESCE((
        (
          "a__email" COLLATE "C"
        ) ~ '@gmail\.com$'
      ), FALSE)
    ) AS "m__gmail_users"
  FROM "base"
), "level_1" AS (
  SELECT
    *,
    (
      (
        "m__churned" AND COALESCE((
          "agg_2" >= CAST('1' AS DECIMAL(38, 9))
        ), FALSE)
      )
    )
    AND COALESCE("c__ads", 1) = 1
    AND NOT "m__vip" AS "m__win_back",
    (
      (
        "m__active_30d" AND NOT "m__vip"
      )
    ) AND COALESCE("c__email", 0) = 1 AS "m__spring_promo",
    CASE
      WHEN (
        (
          "m__active_30d" AND NOT "m__vip"
        )
      ) AND COALESCE("c__email", 0) = 1
      THEN CAST(CAST(CAST('x' || SUBSTRING(MD5('spring-2026:' || CAST("k" AS VARCHAR)) FROM 1 FOR 8) AS BIT(32)) AS BIGINT) & 4294967295 AS BIGINT) % 10000
    END AS "bucket__spring_promo"
  FROM "level_0"
), "level_2" AS (
  SELECT
    *,
    CASE
      WHEN "bucket__spring_promo" < 9000
      THEN 'treatment'
      WHEN "bucket__spring_promo" < 10000
      THEN 'holdout'
    END AS "arm__spring_promo",
    (
      (
        COALESCE((
          "agg_3" >= CAST('1' AS DECIMAL(38, 9))
        ), FALSE)
        AND COALESCE((
          "agg_4" = CAST('0' AS DECIMAL(38, 9))
        ), FALSE)
        AND COALESCE((
          "agg_5" = CAST('0' AS DECIMAL(38, 9))
        ), FALSE)
      )
    )
    AND COALESCE("c__email", 0) = 1
    AND NOT "m__vip"
    AND NOT "m__win_back" AS "m__at_risk"
  FROM "level_1"
), "level_3" AS (
  SELECT
    *,
    (
      COALESCE(
        (
          "a__signup_at" >= CAST('2026-10-25 00:00:00' AS TIMESTAMP)
          AND "a__signup_at" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
        ),
        FALSE
      )
    )
    AND NOT "m__vip"
    AND NOT "m__win_back"
    AND NOT "m__at_risk" AS "m__new_customers"
  FROM "level_2"
)
SELECT
  "k",
  CAST("k" AS VARCHAR) AS "k_text",
  "m__vip",
  "m__churned",
  "m__win_back",
  "m__at_risk",
  "m__new_customers",
  "m__active_30d",
  "m__engaged_email",
  "m__repeat_buyers",
  "m__sales_priority",
  "m__high_intent",
  "m__big_basket",
  "m__pro_plan_eu",
  "m__gmail_users",
  "m__spring_promo",
  "arm__spring_promo"
FROM "level_3";
