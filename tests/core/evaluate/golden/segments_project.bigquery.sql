WITH `agg__orders` AS (
  SELECT
    `customer_id` AS `k`,
    SUM(
      CAST(CASE
        WHEN CAST(`ordered_at` AS DATETIME) >= CAST('2025-11-24 00:00:00' AS DATETIME)
        AND COALESCE((
          `status` = 'completed'
        ), FALSE)
        THEN CAST(CASE
          WHEN ABS(`amount`) < 1e15
          THEN CAST(FLOOR(`amount`) AS NUMERIC) + CAST(`amount` - FLOOR(`amount`) AS NUMERIC)
        END AS NUMERIC)
      END AS NUMERIC)
    ) AS `agg_0`,
    SUM(
      CAST(CASE
        WHEN CAST(`ordered_at` AS DATETIME) >= CAST('2026-05-28 00:00:00' AS DATETIME)
        AND COALESCE((
          `status` = 'completed'
        ), FALSE)
        THEN CAST(CASE
          WHEN ABS(`amount`) < 1e15
          THEN CAST(FLOOR(`amount`) AS NUMERIC) + CAST(`amount` - FLOOR(`amount`) AS NUMERIC)
        END AS NUMERIC)
      END AS NUMERIC)
    ) AS `agg_9`,
    COUNT(
      CAST(CASE
        WHEN CAST(`ordered_at` AS DATETIME) >= CAST('2026-05-28 00:00:00' AS DATETIME)
        AND COALESCE((
          `status` = 'completed'
        ), FALSE)
        THEN CAST(CASE
          WHEN ABS(`amount`) < 1e15
          THEN CAST(FLOOR(`amount`) AS NUMERIC) + CAST(`amount` - FLOOR(`amount`) AS NUMERIC)
        END AS NUMERIC)
      END AS NUMERIC)
    ) AS `agg_9_n`
  FROM `main`.`orders`
  WHERE
    CAST(`ordered_at` AS DATETIME) <= CAST('2026-11-24 00:00:00' AS DATETIME)
    AND CAST(`ordered_at` AS DATETIME) >= CAST('2025-11-24 00:00:00' AS DATETIME)
  GROUP BY
    `customer_id`
), `agg__purchase` AS (
  SELECT
    `customer_id` AS `k`,
    MAX(CAST(`occurred_at` AS DATETIME)) AS `agg_1`,
    COUNT(*) AS `agg_3`,
    COUNT(
      CASE
        WHEN CAST(`occurred_at` AS DATETIME) >= CAST('2026-08-26 00:00:00' AS DATETIME)
        THEN 1
      END
    ) AS `agg_4`,
    COUNT(
      CASE
        WHEN CAST(`occurred_at` AS DATETIME) >= CAST('2026-11-17 00:00:00' AS DATETIME)
        THEN 1
      END
    ) AS `agg_8`
  FROM `main`.`events`
  WHERE
    CAST(`occurred_at` AS DATETIME) <= CAST('2026-11-24 00:00:00' AS DATETIME)
    AND `event_type` = 'purchase'
  GROUP BY
    `customer_id`
), `agg__email_open` AS (
  SELECT
    `customer_id` AS `k`,
    COUNT(
      CASE
        WHEN CAST(`occurred_at` AS DATETIME) >= CAST('2026-05-28 00:00:00' AS DATETIME)
        THEN 1
      END
    ) AS `agg_2`,
    COUNT(
      CASE
        WHEN CAST(`occurred_at` AS DATETIME) >= CAST('2026-09-25 00:00:00' AS DATETIME)
        THEN 1
      END
    ) AS `agg_5`,
    COUNT(
      CASE
        WHEN CAST(`occurred_at` AS DATETIME) >= CAST('2026-08-26 00:00:00' AS DATETIME)
        THEN 1
      END
    ) AS `agg_6`
  FROM `main`.`events`
  WHERE
    CAST(`occurred_at` AS DATETIME) <= CAST('2026-11-24 00:00:00' AS DATETIME)
    AND CAST(`occurred_at` AS DATETIME) >= CAST('2026-05-28 00:00:00' AS DATETIME)
    AND `event_type` = 'email_open'
  GROUP BY
    `customer_id`
), `agg__add_to_cart` AS (
  SELECT
    `customer_id` AS `k`,
    COUNT(
      CASE
        WHEN CAST(`occurred_at` AS DATETIME) >= CAST('2026-11-17 00:00:00' AS DATETIME)
        THEN 1
      END
    ) AS `agg_7`
  FROM `main`.`events`
  WHERE
    CAST(`occurred_at` AS DATETIME) <= CAST('2026-11-24 00:00:00' AS DATETIME)
    AND CAST(`occurred_at` AS DATETIME) >= CAST('2026-11-17 00:00:00' AS DATETIME)
    AND `event_type` = 'add_to_cart'
  GROUP BY
    `customer_id`
), `consent_latest` AS (
  SELECT
    `k`,
    MAX(CASE WHEN `channel` = 'ads' THEN CAST(`opted_in` AS INT64) END) AS `c__ads`,
    MAX(CASE WHEN `channel` = 'email' THEN CAST(`opted_in` AS INT64) END) AS `c__email`
  FROM (
    SELECT
      `customer_id` AS `k`,
      `channel` AS `channel`,
      `opted_in` AS `opted_in`,
      ROW_NUMBER() OVER (
        PARTITION BY `customer_id`, `channel`
        ORDER BY CAST(`updated_at` AS DATETIME) DESC, `opted_in` ASC NULLS LAST
      ) AS `rn`
    FROM `main`.`consents`
    WHERE
      CAST(`updated_at` AS DATETIME) <= CAST('2026-11-24 00:00:00' AS DATETIME)
      AND `channel` IN ('ads', 'email')
  ) AS `ranked`
  WHERE
    `rn` = 1
  GROUP BY
    `k`
), `base` AS (
  SELECT
    `c`.`customer_id` AS `k`,
    `c`.`country` AS `a__country`,
    `c`.`email` AS `a__email`,
    `c`.`is_employee` AS `a__is_employee`,
    CAST(`c`.`last_seen_at` AS DATETIME) AS `a__last_seen_at`,
    CAST(CASE
      WHEN ABS(`c`.`lifetime_value`) < 1e15
      THEN CAST(FLOOR(`c`.`lifetime_value`) AS NUMERIC) + CAST(`c`.`lifetime_value` - FLOOR(`c`.`lifetime_value`) AS NUMERIC)
    END AS NUMERIC) AS `a__lifetime_value`,
    `c`.`plan` AS `a__plan`,
    CAST(`c`.`signup_at` AS DATETIME) AS `a__signup_at`,
    COALESCE(`agg__orders`.`agg_0`, 0) AS `agg_0`,
    `agg__orders`.`agg_9` AS `agg_9`,
    `agg__orders`.`agg_9_n` AS `agg_9_n`,
    `agg__purchase`.`agg_1` AS `agg_1`,
    COALESCE(`agg__purchase`.`agg_3`, 0) AS `agg_3`,
    COALESCE(`agg__purchase`.`agg_4`, 0) AS `agg_4`,
    COALESCE(`agg__purchase`.`agg_8`, 0) AS `agg_8`,
    COALESCE(`agg__email_open`.`agg_2`, 0) AS `agg_2`,
    COALESCE(`agg__email_open`.`agg_5`, 0) AS `agg_5`,
    COALESCE(`agg__email_open`.`agg_6`, 0) AS `agg_6`,
    COALESCE(`agg__add_to_cart`.`agg_7`, 0) AS `agg_7`,
    `consent_latest`.`c__ads` AS `c__ads`,
    `consent_latest`.`c__email` AS `c__email`
  FROM `main`.`customers` AS `c`
  LEFT JOIN `agg__orders`
    ON `agg__orders`.`k` = `c`.`customer_id`
  LEFT JOIN `agg__purchase`
    ON `agg__purchase`.`k` = `c`.`customer_id`
  LEFT JOIN `agg__email_open`
    ON `agg__email_open`.`k` = `c`.`customer_id`
  LEFT JOIN `agg__add_to_cart`
    ON `agg__add_to_cart`.`k` = `c`.`customer_id`
  LEFT JOIN `consent_latest`
    ON `consent_latest`.`k` = `c`.`customer_id`
), `level_0` AS (
  SELECT
    *,
    (
      (
        (
          COALESCE((
            `a__lifetime_value` >= CAST('2000' AS NUMERIC)
          ), FALSE)
          OR COALESCE((
            `agg_0` > CAST('500' AS NUMERIC)
          ), FALSE)
        )
        AND NOT COALESCE((
          `a__is_employee` = TRUE
        ), FALSE)
      )
    )
    AND COALESCE(`c__email`, 0) = 1 AS `m__vip`,
    (
      (
        COALESCE((
          `agg_1` < CAST('2025-11-24 00:00:00' AS DATETIME)
        ), FALSE)
        AND COALESCE((
          `a__last_seen_at` < CAST('2026-05-28 00:00:00' AS DATETIME)
        ), FALSE)
      )
    ) AS `m__churned`,
    (
      COALESCE(
        (
          `a__last_seen_at` >= CAST('2026-10-25 00:00:00' AS DATETIME)
          AND `a__last_seen_at` <= CAST('2026-11-24 00:00:00' AS DATETIME)
        ),
        FALSE
      )
    ) AS `m__active_30d`,
    (
      COALESCE((
        `agg_6` >= CAST('3' AS NUMERIC)
      ), FALSE)
    ) AS `m__engaged_email`,
    (
      COALESCE((
        `agg_4` >= CAST('2' AS NUMERIC)
      ), FALSE)
    ) AS `m__repeat_buyers`,
    (
      (
        COALESCE((
          `a__plan` = 'pro'
        ), FALSE)
        AND COALESCE((
          `a__lifetime_value` >= CAST('1000' AS NUMERIC)
        ), FALSE)
        AND NOT COALESCE((
          `a__is_employee` = TRUE
        ), FALSE)
      )
    )
    AND COALESCE(`c__email`, 0) = 1 AS `m__sales_priority`,
    (
      (
        COALESCE((
          `agg_7` >= CAST('1' AS NUMERIC)
        ), FALSE)
        AND COALESCE((
          `agg_8` = CAST('0' AS NUMERIC)
        ), FALSE)
      )
    )
    AND COALESCE(`c__ads`, 1) = 1 AS `m__high_intent`,
    (
      COALESCE((
        `agg_9` > CAST('150' AS NUMERIC) * `agg_9_n`
      ), FALSE)
    ) AS `m__big_basket`,
    (
      (
        COALESCE((
          `a__plan` = 'pro'
        ), FALSE)
        AND COALESCE((
          `a__country` IN ('DE', 'FR', 'NL', 'IT', 'ES')
        ), FALSE)
      )
    ) AS `m__pro_plan_eu`,
    (
      COALESCE((
        REGEXP_CONTAINS(`a__email`, '@gmail\\.com$')
      ), FALSE)
    ) AS `m__gmail_users`
  FROM `base`
), `level_1` AS (
  SELECT
    *,
    (
      (
        `m__churned` AND COALESCE((
          `agg_2` >= CAST('1' AS NUMERIC)
        ), FALSE)
      )
    )
    AND COALESCE(`c__ads`, 1) = 1
    AND NOT `m__vip` AS `m__win_back`,
    (
      (
        `m__active_30d` AND NOT `m__vip`
      )
    ) AND COALESCE(`c__email`, 0) = 1 AS `m__spring_promo`,
    CASE
      WHEN (
        (
          `m__active_30d` AND NOT `m__vip`
        )
      ) AND COALESCE(`c__email`, 0) = 1
      THEN MOD(
        CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5('spring-2026:' || CAST(`k` AS STRING))), 1, 8)) AS INT64),
        10000
      )
    END AS `bucket__spring_promo`
  FROM `level_0`
), `level_2` AS (
  SELECT
    *,
    CASE
      WHEN `bucket__spring_promo` < 9000
      THEN 'treatment'
      WHEN `bucket__spring_promo` < 10000
      THEN 'holdout'
    END AS `arm__spring_promo`,
    (
      (
        COALESCE((
          `agg_3` >= CAST('1' AS NUMERIC)
        ), FALSE)
        AND COALESCE((
          `agg_4` = CAST('0' AS NUMERIC)
        ), FALSE)
        AND COALESCE((
          `agg_5` = CAST('0' AS NUMERIC)
        ), FALSE)
      )
    )
    AND COALESCE(`c__email`, 0) = 1
    AND NOT `m__vip`
    AND NOT `m__win_back` AS `m__at_risk`
  FROM `level_1`
), `level_3` AS (
  SELECT
    *,
    (
      COALESCE(
        (
          `a__signup_at` >= CAST('2026-10-25 00:00:00' AS DATETIME)
          AND `a__signup_at` <= CAST('2026-11-24 00:00:00' AS DATETIME)
        ),
        FALSE
      )
    )
    AND NOT `m__vip`
    AND NOT `m__win_back`
    AND NOT `m__at_risk` AS `m__new_customers`
  FROM `level_2`
)
SELECT
  `k`,
  CAST(`k` AS STRING) AS `k_text`,
  `m__vip`,
  `m__churned`,
  `m__win_back`,
  `m__at_risk`,
  `m__new_customers`,
  `m__active_30d`,
  `m__engaged_email`,
  `m__repeat_buyers`,
  `m__sales_priority`,
  `m__high_intent`,
  `m__big_basket`,
  `m__pro_plan_eu`,
  `m__gmail_users`,
  `m__spring_promo`,
  `arm__spring_promo`
FROM `level_3`;
