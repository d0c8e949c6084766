#!/usr/bin/env python3
"""Writes the example job's input under data/: deterministic, small, realistic.

data/orders/order_date=YYYY-MM-DD/orders.csv   five weeks of orders, Hive-partitioned CSV
data/customers/customers.json                  customers as newline-delimited JSON

Run from the repository root: python3 scripts/make_example_data.py
"""
import csv
import datetime as dt
import json
import os
import random
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
FIRST_DAY = dt.date(2026, 10, 26)  # a Monday
DAYS = 35
CUSTOMERS = 240
SEGMENTS = ["enterprise", "mid_market", "smb", "consumer"]
COUNTRIES = ["FR", "DE", "ES", "IT", "NL", "BE", "PL", "SE"]
STATUSES = ["completed"] * 12 + ["refunded", "cancelled"]


def customers(rng):
    rows = []
    for i in range(1, CUSTOMERS + 1):
        segment = rng.choices(SEGMENTS, weights=[1, 3, 6, 10])[0]
        record = {
            "customer_id": i,
            "Name": f"Customer {i:04d}",
            "segment": segment,
            "signup_date": str(FIRST_DAY - dt.timedelta(days=rng.randint(30, 900))),
            "address": {"city": rng.choice(["Paris", "Berlin", "Madrid", "Rome", "Lyon"]), "country": rng.choice(COUNTRIES)},
            "tags": rng.sample(["vip", "newsletter", "b2b", "churn_risk", "promo"], rng.randint(0, 2)),
        }
        if rng.random() < 0.2:
            record["credit_limit"] = rng.choice([5000, 10000, 25000.5])
        rows.append(record)
    return rows


def orders(rng):
    order_id = 100000
    days = {}
    for offset in range(DAYS):
        day = FIRST_DAY + dt.timedelta(days=offset)
        rows = []
        for _ in range(rng.randint(25, 45) + (15 if day.weekday() < 5 else 0)):
            order_id += 1
            # A few loyal customers place a third of the orders.
            customer = rng.randint(1, 25) if rng.random() < 0.33 else rng.randint(1, CUSTOMERS)
            at = dt.datetime.combine(day, dt.time(rng.randint(7, 22), rng.randint(0, 59), rng.randint(0, 59)))
            quantity = rng.randint(1, 6)
            unit_price = round(rng.lognormvariate(3.2, 0.8), 2)
            discount = rng.choice(["", "", "", "0.05", "0.1"])
            rows.append([order_id, customer, at.strftime("%Y-%m-%d %H:%M:%S"), rng.choice(STATUSES),
                         quantity, f"{unit_price:.2f}", discount, rng.choice(["web", "store", "app"])])
        days[day] = rows
    return days


def main():
    rng = random.Random(20261130)
    for folder in ("orders", "customers"):
        shutil.rmtree(os.path.join(ROOT, folder), ignore_errors=True)
    os.makedirs(os.path.join(ROOT, "customers"))
    with open(os.path.join(ROOT, "customers", "customers.json"), "w") as out:
        for record in customers(rng):
            out.write(json.dumps(record) + "\n")
    for day, rows in orders(rng).items():
        folder = os.path.join(ROOT, "orders", f"order_date={day}")
        os.makedirs(folder)
        with open(os.path.join(folder, "orders.csv"), "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["Order ID", "Customer ID", "Ordered At", "Status", "Quantity", "Unit Price", "Discount", "Channel"])
            writer.writerows(rows)


if __name__ == "__main__":
    main()
