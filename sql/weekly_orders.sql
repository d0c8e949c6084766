-- Weekly revenue per customer segment, for the weeks before the logical date's week.
-- Parameters: $weeks, $channel; built-ins: $week_start (Monday of the logical date's week).

-- Completed orders of the window, with their net amount (in DECIMAL: money is summed exactly,
-- not in binary floating point) and the Monday of their week.
CREATE VIEW orders_in_window AS
SELECT
    o.order_id,
    o.customer_id,
    o.quantity * CAST(o.unit_price AS DECIMAL(12, 2)) * (1 - coalesce(CAST(o.discount AS DECIMAL(3, 2)), 0))
        AS net_amount,
    CAST(date_trunc('week', o.order_date) AS DATE) AS order_week
FROM raw.orders AS o
WHERE o.order_date >= $week_start - CAST(7 * $weeks AS INT)
  AND o.order_date < $week_start
  AND o.status = 'completed'
  AND ($channel = 'all' OR o.channel = $channel);

-- Per week and segment: orders, buyers, revenue; then each segment's rank within its week
-- and its change from the week before.
CREATE VIEW weekly_revenue AS
WITH per_segment AS (
    SELECT
        o.order_week,
        c.segment,
        count(*) AS orders,
        count(DISTINCT o.customer_id) AS customers,
        sum(o.net_amount) AS revenue
    FROM orders_in_window AS o
    JOIN raw.customers AS c ON c.customer_id = o.customer_id
    GROUP BY o.order_week, c.segment
)
SELECT
    segment,
    orders,
    customers,
    CAST(round(revenue, 2) AS DECIMAL(14, 2)) AS revenue,
    CAST(round(revenue / customers, 2) AS DECIMAL(12, 2)) AS revenue_per_customer,
    rank() OVER (PARTITION BY order_week ORDER BY revenue DESC) AS segment_rank,
    CAST(round(revenue - lag(revenue) OVER (PARTITION BY segment ORDER BY order_week), 2) AS DECIMAL(14, 2))
        AS revenue_change,
    order_week
FROM per_segment;
