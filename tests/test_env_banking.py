import pytest

from magnet_lib.pool.envs.banking import BankingEnv
from tests.envs_support import ToolRecorder


def _accounts(r: ToolRecorder) -> dict[str, dict]:
    accounts = r.ok("list_bank_accounts")["accounts"]
    return {a["nickname"]: a for a in accounts}


def transfer_flow(r: ToolRecorder) -> None:
    accounts = _accounts(r)
    checking, savings, euro = (accounts[n]["account_id"] for n in ("Everyday Checking", "Rainy Day Savings", "Euro Travel Account"))
    before = r.ok("get_account_balance", account_id=checking)
    assert before["currency"] == "USD" and before["balance"] == before["available_balance"]

    gate = r.ok("check_sufficient_funds", account_id=checking, amount=before["available_balance"] + 1)
    assert not gate["sufficient"] and gate["shortfall"] == 1.0
    r.err(
        "transfer_between_accounts",
        "insufficient_funds",
        from_account_id=checking,
        to_account_id=savings,
        amount=before["available_balance"] + 1,
    )
    assert r.ok("check_sufficient_funds", account_id=checking, amount=100.0)["sufficient"]

    moved = r.ok("transfer_between_accounts", from_account_id=checking, to_account_id=savings, amount=100.0)
    assert moved["status"] == "completed" and moved["credited_amount"] == 100.0
    assert r.ok("get_account_balance", account_id=checking)["balance"] == round(before["balance"] - 100, 2)
    assert r.ok("get_transfer_status", transfer_id=moved["transfer_id"])["status"] == "completed"
    r.err("cancel_scheduled_transfer", "transfer_not_cancellable", transfer_id=moved["transfer_id"])

    # USD -> EUR: the credited amount is converted at the same rate convert_currency_amount uses
    fx = r.ok("transfer_between_accounts", from_account_id=checking, to_account_id=euro, amount=50.0)
    quote = r.ok("convert_currency_amount", amount=50.0, from_currency="USD", to_currency="EUR")
    assert fx["credited_amount"] == quote["converted_amount"]
    assert r.ok("get_exchange_rate", from_currency="USD", to_currency="EUR")["rate"] == fx["exchange_rate"]

    later = r.ok("transfer_between_accounts", from_account_id=checking, to_account_id=savings, amount=20.0, scheduled_date="2025-07-15")
    held = r.ok("get_account_balance", account_id=checking)
    assert later["status"] == "scheduled" and held["available_balance"] == round(held["balance"] - 20, 2)
    cancelled = r.ok("cancel_scheduled_transfer", transfer_id=later["transfer_id"])
    assert cancelled["status"] == "cancelled"
    released = r.ok("get_account_balance", account_id=checking)
    assert released["available_balance"] == released["balance"]

    statement = r.ok("get_account_statement", account_id=checking, month="2025-07")
    assert [t["amount"] for t in statement["transactions"]] == [-100.0, -50.0]
    assert statement["total_out"] == 150.0
    june = r.ok("get_account_statement", account_id=checking, month="2025-06")["transactions"]
    first = r.ok("get_transaction_details", transaction_id=june[0]["transaction_id"])
    assert first["account_id"] == checking and first["amount"] < 0 and first["counterparty"]
    sent = r.ok("get_transaction_details", transaction_id=statement["transactions"][0]["transaction_id"])
    assert sent["category"] == "transfer" and sent["counterparty"] == savings

    r.err("transfer_between_accounts", "same_account", from_account_id=checking, to_account_id=checking, amount=1.0)
    r.err("transfer_between_accounts", "invalid_amount", from_account_id=checking, to_account_id=savings, amount=-5.0)
    r.err(
        "transfer_between_accounts",
        "invalid_date",
        from_account_id=checking,
        to_account_id=savings,
        amount=5.0,
        scheduled_date="2025-06-01",
    )
    r.err("get_account_balance", "unknown_account", account_id="ACC-1")
    r.err("get_transfer_status", "unknown_transfer", transfer_id="TRF-1")
    r.err("get_transaction_details", "unknown_transaction", transaction_id="TX-1")


def bill_flow(r: ToolRecorder) -> None:
    accounts = _accounts(r)
    checking, euro = accounts["Everyday Checking"]["account_id"], accounts["Euro Travel Account"]["account_id"]
    bills = r.ok("list_due_bills")["bills"]
    usd_bill = next(b for b in bills if b["currency"] == "USD")
    details = r.ok("get_bill_details", bill_id=usd_bill["bill_id"])
    assert details["status"] == "unpaid" and details["amount"] == usd_bill["amount"]

    r.err("pay_bill", "overpayment", bill_id=usd_bill["bill_id"], account_id=checking, amount=usd_bill["amount"] + 1)
    r.err("pay_bill", "currency_mismatch", bill_id=usd_bill["bill_id"], account_id=euro, amount=usd_bill["amount"])
    half = round(usd_bill["amount"] / 2, 2)
    part = r.ok("pay_bill", bill_id=usd_bill["bill_id"], account_id=checking, amount=half)
    assert part["remaining_due"] == round(usd_bill["amount"] - half, 2)
    assert r.ok("get_bill_details", bill_id=usd_bill["bill_id"])["status"] == "partially_paid"
    assert r.ok("check_sufficient_funds", account_id=checking, amount=part["remaining_due"])["sufficient"]
    rest = r.ok("pay_bill", bill_id=usd_bill["bill_id"], account_id=checking, amount=part["remaining_due"])
    assert rest["remaining_due"] == 0
    assert usd_bill["bill_id"] not in [b["bill_id"] for b in r.ok("list_due_bills")["bills"]]
    r.err("pay_bill", "bill_already_paid", bill_id=usd_bill["bill_id"], account_id=checking, amount=1.0)

    receipt = r.ok("get_bill_payment_receipt", payment_id=rest["payment_id"])
    assert receipt["biller_name"] == usd_bill["biller_name"] and receipt["amount"] == rest["amount"]
    booked = r.ok("get_transaction_details", transaction_id=receipt["transaction_id"])
    assert booked["category"] == "bill" and booked["amount"] == -rest["amount"]

    # the rent bill is in EUR: how much is it in dollars, and can the euro account cover it?
    rent = r.ok("get_bill_details", bill_id=next(b["bill_id"] for b in bills if b["currency"] == "EUR"))
    in_usd = r.ok("convert_currency_amount", amount=rent["amount"], from_currency="EUR", to_currency="USD")
    assert in_usd["converted_amount"] > rent["amount"]
    gate = r.ok("check_sufficient_funds", account_id=euro, amount=rent["amount"])
    if gate["sufficient"]:
        r.ok("pay_bill", bill_id=rent["bill_id"], account_id=euro, amount=rent["amount"])
    else:
        r.err("pay_bill", "insufficient_funds", bill_id=rent["bill_id"], account_id=euro, amount=rent["amount"])

    r.err("get_bill_details", "unknown_bill", bill_id="BILL-1")
    r.err("get_bill_payment_receipt", "unknown_payment", payment_id="PAY-1")


@pytest.mark.parametrize("seed", [1, 2, 9])
def test_banking_flows(seed):
    r = ToolRecorder(BankingEnv(seed=seed))
    transfer_flow(r)
    bill_flow(r)
    r.assert_all_called()
