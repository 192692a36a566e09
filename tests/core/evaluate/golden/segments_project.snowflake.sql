WITH "AGG__ORDERS" AS (
  SELECT
    "CUSTOMER_ID" AS "K",
    SUM(
      CAST(CASE
        WHEN "ORDERED_AT" >= CAST('2025-11-24 00:00:00' AS TIMESTAMP)
        AND COALESCE((
          "STATUS" = 'completed'
        ), FALSE)
        THEN CAST(CASE
          WHEN ABS("AMOUNT") < 1e15
          THEN CAST(FLOOR("AMOUNT") AS DECIMAL(18, 0)) + CAST("AMOUNT" - FLOOR("AMOUNT") AS DECIMAL(38, 9))
        END AS DECIMAL(38, 9))
      END AS DECIMAL(38, 9))
    ) AS "AGG_0",
    SUM(
      CAST(CASE
        WHEN "ORDERED_AT" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP)
        AND COALESCE((
          "STATUS" = 'completed'
        ), FALSE)
        THEN CAST(CASE
          WHEN ABS("AMOUNT") < 1e15
          THEN CAST(FLOOR("AMOUNT") AS DECIMAL(18, 0)) + CAST("AMOUNT" - FLOOR("AMOUNT") AS DECIMAL(38, 9))
        END AS DECIMAL(38, 9))
      END AS DECIMAL(38, 9))
    ) AS "AGG_9",
    COUNT(
      CAST(CASE
        WHEN "ORDERED_AT" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP)
        AND COALESCE((
          "STATUS" = 'completed'
        ), FALSE)
        THEN CAST(CASE
          WHEN ABS("AMOUNT") < 1e15
          THEN CAST(FLOOR("AMOUNT") AS DECIMAL(18, 0)) + CAST("AMOUNT" - FLOOR("AMOUNT") AS DECIMAL(38, 9))
        END AS DECIMAL(38, 9))
      END AS DECIMAL(38, 9))
    ) AS "AGG_9_N"
  FROM "MAIN"."ORDERS"
  WHERE
    "ORDERED_AT" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "ORDERED_AT" >= CAST('2025-11-24 00:00:00' AS TIMESTAMP)
  GROUP BY
    "CUSTOMER_ID"
), "AGG__PURCHASE" AS (
  SELECT
    "CUSTOMER_ID" AS "K",
    MAX("OCCURRED_AT") AS "AGG_1",
    COUNT(*) AS "AGG_3",
    COUNT(CASE WHEN "OCCURRED_AT" >= CAST('2026-08-26 00:00:00' AS TIMESTAMP) THEN 1 END) AS "AGG_4",
    COUNT(CASE WHEN "OCCURRED_AT" >= CAST('2026-11-17 00:00:00' AS TIMESTAMP) THEN 1 END) AS "AGG_8"
  FROM "MAIN"."EVENTS"
  WHERE
    "OCCURRED_AT" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "EVENT_TYPE" = 'purchase'
  GROUP BY
    "CUSTOMER_ID"
), "AGG__EMAIL_OPEN" AS (
  SELECT
    "CUSTOMER_ID" AS "K",
    COUNT(CASE WHEN "OCCURRED_AT" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP) THEN 1 END) AS "AGG_2",
    COUNT(CASE WHEN "OCCURRED_AT" >= CAST('2026-09-25 00:00:00' AS TIMESTAMP) THEN 1 END) AS "AGG_5",
    COUNT(CASE WHEN "OCCURRED_AT" >= CAST('2026-08-26 00:00:00' AS TIMESTAMP) THEN 1 END) AS "AGG_6"
  FROM "MAIN"."EVENTS"
  WHERE
    "OCCURRED_AT" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "OCCURRED_AT" >= CAST('2026-05-28 00:00:00' AS TIMESTAMP)
    AND "EVENT_TYPE" = 'email_open'
  GROUP BY
    "CUSTOMER_ID"
), "AGG__ADD_TO_CART" AS (
  SELECT
    "CUSTOMER_ID" AS "K",
    COUNT(CASE WHEN "OCCURRED_AT" >= CAST('2026-11-17 00:00:00' AS TIMESTAMP) THEN 1 END) AS "AGG_7"
  FROM "MAIN"."EVENTS"
  WHERE
    "OCCURRED_AT" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
    AND "OCCURRED_AT" >= CAST('2026-11-17 00:00:00' AS TIMESTAMP)
    AND "EVENT_TYPE" = 'add_to_cart'
  GROUP BY
    "CUSTOMER_ID"
), "CONSENT_LATEST" AS (
  SELECT
    "K",
    MAX(CASE WHEN "CHANNEL" = 'ads' THEN CAST("OPTED_IN" AS INT) END) AS "C__ADS",
    MAX(CASE WHEN "CHANNEL" = 'email' THEN CAST("OPTED_IN" AS INT) END) AS "C__EMAIL"
  FROM (
    SELECT
      "CUSTOMER_ID" AS "K",
      "CHANNEL" AS "CHANNEL",
      "OPTED_IN" AS "OPTED_IN",
      ROW_NUMBER() OVER (
        PARTITION BY "CUSTOMER_ID", "CHANNEL"
        ORDER BY "UPDATED_AT" DESC NULLS LAST, "OPTED_IN" ASC
      ) AS "RN"
    FROM "MAIN"."CONSENTS"
    WHERE
      "UPDATED_AT" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
      AND "CHANNEL" IN ('ads', 'email')
  ) AS "RANKED"
  WHERE
    "RN" = 1
  GROUP BY
    "K"
), "BASE" AS (
  SELECT
    "C"."CUSTOMER_ID" AS "K",
    "C"."COUNTRY" AS "A__COUNTRY",
    "C"."EMAIL" AS "A__EMAIL",
    "C"."IS_EMPLOYEE" AS "A__IS_EMPLOYEE",
    "C"."LAST_SEEN_AT" AS "A__LAST_SEEN_AT",
    CAST(CASE
      WHEN ABS("C"."LIFETIME_VALUE") < 1e15
      THEN CAST(FLOOR("C"."LIFETIME_VALUE") AS DECIMAL(18, 0)) + CAST("C"."LIFETIME_VALUE" - FLOOR("C"."LIFETIME_VALUE") AS DECIMAL(38, 9))
    END AS DECIMAL(38, 9)) AS "A__LIFETIME_VALUE",
    "C"."PLAN" AS "A__PLAN",
    "C"."SIGNUP_AT" AS "A__SIGNUP_AT",
    COALESCE("AGG__ORDERS"."AGG_0", 0) AS "AGG_0",
    "AGG__ORDERS"."AGG_9" AS "AGG_9",
    "AGG__ORDERS"."AGG_9_N" AS "AGG_9_N",
    "AGG__PURCHASE"."AGG_1" AS "AGG_1",
    COALESCE("AGG__PURCHASE"."AGG_3", 0) AS "AGG_3",
    COALESCE("AGG__PURCHASE"."AGG_4", 0) AS "AGG_4",
    COALESCE("AGG__PURCHASE"."AGG_8", 0) AS "AGG_8",
    COALESCE("AGG__EMAIL_OPEN"."AGG_2", 0) AS "AGG_2",
    COALESCE("AGG__EMAIL_OPEN"."AGG_5", 0) AS "AGG_5",
    COALESCE("AGG__EMAIL_OPEN"."AGG_6", 0) AS "AGG_6",
    COALESCE("AGG__ADD_TO_CART"."AGG_7", 0) AS "AGG_7",
    "CONSENT_LATEST"."C__ADS" AS "C__ADS",
    "CONSENT_LATEST"."C__EMAIL" AS "C__EMAIL"
  FROM "MAIN"."CUSTOMERS" AS "C"
  LEFT JOIN "AGG__ORDERS"
    ON "AGG__ORDERS"."K" = "C"."CUSTOMER_ID"
  LEFT JOIN "AGG__PURCHASE"
    ON "AGG__PURCHASE"."K" = "C"."CUSTOMER_ID"
  LEFT JOIN "AGG__EMAIL_OPEN"
    ON "AGG__EMAIL_OPEN"."K" = "C"."CUSTOMER_ID"
  LEFT JOIN "AGG__ADD_TO_CART"
    ON "AGG__ADD_TO_CART"."K" = "C"."CUSTOMER_ID"
  LEFT JOIN "CONSENT_LATEST"
    ON "CONSENT_LATEST"."K" = "C"."CUSTOMER_ID"
), "LEVEL_0" AS (
  SELECT
    *,
    (
      (
        (
          COALESCE((
            "A__LIFETIME_VALUE" >= CAST('2000' AS DECIMAL(38, 9))
          ), FALSE)
          OR COALESCE((
            "AGG_0" > CAST('500' AS DECIMAL(38, 9))
          ), FALSE)
        )
        AND NOT COALESCE((
          "A__IS_EMPLOYEE" = TRUE
        ), FALSE)
      )
    )
    AND COALESCE("C__EMAIL", 0) = 1 AS "M__VIP",
    (
      (
        COALESCE((
          "AGG_1" < CAST('2025-11-24 00:00:00' AS TIMESTAMP)
        ), FALSE)
        AND COALESCE((
          "A__LAST_SEEN_AT" < CAST('2026-05-28 00:00:00' AS TIMESTAMP)
        ), FALSE)
      )
    ) AS "M__CHURNED",
    (
      COALESCE(
        (
          "A__LAST_SEEN_AT" >= CAST('2026-10-25 00:00:00' AS TIMESTAMP)
          AND "A__LAST_SEEN_AT" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
        ),
        FALSE
      )
    ) AS "M__ACTIVE_30D",
    (
      COALESCE((
        "AGG_6" >= CAST('3' AS DECIMAL(38, 9))
      ), FALSE)
    ) AS "M__ENGAGED_EMAIL",
    (
      COALESCE((
        "AGG_4" >= CAST('2' AS DECIMAL(38, 9))
      ), FALSE)
    ) AS "M__REPEAT_BUYERS",
    (
      (
        COALESCE((
          "A__PLAN" = 'pro'
        ), FALSE)
        AND COALESCE((
          "A__LIFETIME_VALUE" >= CAST('1000' AS DECIMAL(38, 9))
        ), FALSE)
        AND NOT COALESCE((
          "A__IS_EMPLOYEE" = TRUE
        ), FALSE)
      )
    )
    AND COALESCE("C__EMAIL", 0) = 1 AS "M__SALES_PRIORITY",
    (
      (
        COALESCE((
          "AGG_7" >= CAST('1' AS DECIMAL(38, 9))
        ), FALSE)
        AND COALESCE((
          "AGG_8" = CAST('0' AS DECIMAL(38, 9))
        ), FALSE)
      )
    )
    AND COALESCE("C__ADS", 1) = 1 AS "M__HIGH_INTENT",
    (
      COALESCE((
        "AGG_9" > CAST('150' AS DECIMAL(38, 9)) * "AGG_9_N"
      ), FALSE)
    ) AS "M__BIG_BASKET",
    (
      (
        COALESCE((
          "A__PLAN" = 'pro'
        ), FALSE)
        AND COALESCE((
          "A__COUNTRY" IN ('DE', 'FR', 'NL', 'IT', 'ES')
        ), FALSE)
      )
    ) AS "M__PRO_PLAN_EU",
    (
      COALESCE((
        REGEXP_INSTR("A__EMAIL", '@gmail\\.com$') > 0
      ), FALSE)
    ) AS "M__GMAIL_USERS"
  FROM "BASE"
), "LEVEL_1" AS (
  SELECT
    *,
    (
      (
        "M__CHURNED" AND COALESCE((
          "AGG_2" >= CAST('1' AS DECIMAL(38, 9))
        ), FALSE)
      )
    )
    AND COALESCE("C__ADS", 1) = 1
    AND NOT "M__VIP" AS "M__WIN_BACK",
    (
      (
        "M__ACTIVE_30D" AND NOT "M__VIP"
      )
    ) AND COALESCE("C__EMAIL", 0) = 1 AS "M__SPRING_PROMO",
    CASE
      WHEN (
        (
          "M__ACTIVE_30D" AND NOT "M__VIP"
        )
      ) AND COALESCE("C__EMAIL", 0) = 1
      THEN (
        (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 1, 1), '0123456789abcdef') - 1
        ) * 268435456 + (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 2, 1), '0123456789abcdef') - 1
        ) * 16777216 + (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 3, 1), '0123456789abcdef') - 1
        ) * 1048576 + (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 4, 1), '0123456789abcdef') - 1
        ) * 65536 + (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 5, 1), '0123456789abcdef') - 1
        ) * 4096 + (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 6, 1), '0123456789abcdef') - 1
        ) * 256 + (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 7, 1), '0123456789abcdef') - 1
        ) * 16 + (
          CHARINDEX(SUBSTRING(MD5('spring-2026:' || CAST("K" AS VARCHAR)), 8, 1), '0123456789abcdef') - 1
        ) * 1
      ) % 10000
    END AS "BUCKET__SPRING_PROMO"
  FROM "LEVEL_0"
), "LEVEL_2" AS (
  SELECT
    *,
    CASE
      WHEN "BUCKET__SPRING_PROMO" < 9000
      THEN 'treatment'
      WHEN "BUCKET__SPRING_PROMO" < 10000
      THEN 'holdout'
    END AS "ARM__SPRING_PROMO",
    (
      (
        COALESCE((
          "AGG_3" >= CAST('1' AS DECIMAL(38, 9))
        ), FALSE)
        AND COALESCE((
          "AGG_4" = CAST('0' AS DECIMAL(38, 9))
        ), FALSE)
        AND COALESCE((
          "AGG_5" = CAST('0' AS DECIMAL(38, 9))
        ), FALSE)
      )
    )
    AND COALESCE("C__EMAIL", 0) = 1
    AND NOT "M__VIP"
    AND NOT "M__WIN_BACK" AS "M__AT_RISK"
  FROM "LEVEL_1"
), "LEVEL_3" AS (
  SELECT
    *,
    (
      COALESCE(
        (
          "A__SIGNUP_AT" >= CAST('2026-10-25 00:00:00' AS TIMESTAMP)
          AND "A__SIGNUP_AT" <= CAST('2026-11-24 00:00:00' AS TIMESTAMP)
        ),
        FALSE
      )
    )
    AND NOT "M__VIP"
    AND NOT "M__WIN_BACK"
    AND NOT "M__AT_RISK" AS "M__NEW_CUSTOMERS"
  FROM "LEVEL_2"
)
SELECT
  "K",
  CAST("K" AS VARCHAR) AS "K_TEXT",
  "M__VIP",
  "M__CHURNED",
  "M__WIN_BACK",
  "M__AT_RISK",
  "M__NEW_CUSTOMERS",
  "M__ACTIVE_30D",
  "M__ENGAGED_EMAIL",
  "M__REPEAT_BUYERS",
  "M__SALES_PRIORITY",
  "M__HIGH_INTENT",
  "M__BIG_BASKET",
  "M__PRO_PLAN_EU",
  "M__GMAIL_USERS",
  "M__SPRING_PROMO",
  "ARM__SPRING_PROMO"
FROM "LEVEL_3";
