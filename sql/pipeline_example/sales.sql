-- The day's completed orders per customer segment and channel, with their revenue in DECIMAL
-- (money is summed exactly).
CREATE VIEW daily_sales AS
SELECT
    c.segment,
    o.channel,
    count(*) AS orders,
    count(DISTINCT o.customer_id) AS customers,
    CAST(sum(o.quantity * o.unit_price * (1 - o.discount)) AS DECIMAL(14, 2)) AS revenue,
    o.order_date
FROM clean.orders AS o
JOIN clean.customers AS c ON c.customer_id = o.customer_id
WHERE o.order_date = $logical_date
GROUP BY c.segment, o.channel, o.order_date;
