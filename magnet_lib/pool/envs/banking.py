"""Banking: the user's accounts, statements, transfers, bill payments and currency exchange.

Flows: list_bank_accounts -> account_id -> get_account_balance / get_account_statement ->
transaction_id -> get_transaction_details; check_sufficient_funds (gate) ->
transfer_between_accounts -> transfer_id -> get_transfer_status / cancel_scheduled_transfer
(only a scheduled transfer can be cancelled); list_due_bills -> bill_id, amount ->
get_bill_details / pay_bill -> payment_id -> get_bill_payment_receipt; a bill or balance in
another currency -> get_exchange_rate / convert_currency_amount (nested: the user asks "how
much is that in dollars"). "Today" in this world is 2025-07-01.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

Currency = Literal["USD", "EUR", "GBP", "JPY", "CAD", "CHF"]
_USD_RATE = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "CAD": 1.36, "CHF": 0.88}  # units per USD
_TODAY = date(2025, 7, 1)
_ACCOUNTS = [("checking", "Everyday Checking", "USD"), ("savings", "Rainy Day Savings", "USD"), ("checking", "Euro Travel Account", "EUR")]
_MERCHANTS = [
    ("Corner Grocery", "groceries"),
    ("City Transit", "transport"),
    ("Bean There Cafe", "dining"),
    ("Pharma Plus", "health"),
    ("Bookworm Books", "shopping"),
    ("Fuel Stop", "transport"),
    ("Trattoria Roma", "dining"),
]
_BILLERS = [
    ("Bright Power Electric", "utilities", "USD"),
    ("Clearwater Utility", "utilities", "USD"),
    ("FiberLink Internet", "internet", "USD"),
    ("Mobile One", "phone", "USD"),
    ("Appartamento Roma Rent", "rent", "EUR"),
]


class AccountSummary(BaseModel):
    account_id: str = Field(description="Identifier of the account.")
    nickname: str = Field(description="Name the user gave the account.")
    account_type: Literal["checking", "savings"] = Field(description="Kind of account.")
    currency: str = Field(description="Currency the account is held in (ISO code).")


class AccountList(BaseModel):
    """The user's bank accounts."""

    accounts: list[AccountSummary] = Field(description="All accounts of the user.")


class Balance(BaseModel):
    """Balance of one account."""

    account_id: str = Field(description="Identifier of the account.")
    balance: float = Field(description="Booked balance.")
    available_balance: float = Field(description="Balance minus holds for scheduled transfers; what can be spent now.")
    currency: str = Field(description="Currency of the amounts (ISO code).")


class Transaction(BaseModel):
    transaction_id: str = Field(description="Identifier of the transaction.")
    date: str = Field(description="Booking date, YYYY-MM-DD.")
    description: str = Field(description="What the transaction was.")
    amount: float = Field(description="Signed amount: negative leaves the account, positive enters it.")


class Statement(BaseModel):
    """Transactions of an account, oldest first."""

    account_id: str = Field(description="Identifier of the account.")
    currency: str = Field(description="Currency of the amounts (ISO code).")
    transactions: list[Transaction] = Field(description="Transactions in the period.")
    total_in: float = Field(description="Sum of the money that entered the account in the period.")
    total_out: float = Field(description="Sum of the money that left the account in the period (positive).")


class TransactionDetails(Transaction):
    """Full details of one transaction."""

    account_id: str = Field(description="Account the transaction belongs to.")
    category: str = Field(description="Spending category, e.g. 'dining', 'transfer', 'bill'.")
    counterparty: str = Field(description="Merchant, biller or account on the other side.")
    currency: str = Field(description="Currency of the amount (ISO code).")


class FundsCheck(BaseModel):
    """Whether an account can cover an amount."""

    account_id: str = Field(description="Identifier of the account.")
    amount: float = Field(description="Amount asked about.")
    sufficient: bool = Field(description="True when the available balance covers the amount.")
    available_balance: float = Field(description="What can be spent now.")
    shortfall: float = Field(description="How much is missing (0 when sufficient).")
    currency: str = Field(description="Currency of the amounts (ISO code).")


class Transfer(BaseModel):
    """A transfer between two of the user's accounts."""

    transfer_id: str = Field(description="Identifier of the transfer.")
    from_account_id: str = Field(description="Account the money leaves.")
    to_account_id: str = Field(description="Account the money enters.")
    amount: float = Field(description="Amount debited, in the source account's currency.")
    credited_amount: float = Field(description="Amount credited, in the destination account's currency.")
    exchange_rate: float = Field(description="Rate applied (1 when both accounts share a currency).")
    scheduled_date: str = Field(description="Date the transfer runs, YYYY-MM-DD.")
    status: Literal["completed", "scheduled", "cancelled"] = Field(description="Transfer status.")


class DueBill(BaseModel):
    bill_id: str = Field(description="Identifier of the bill.")
    biller_name: str = Field(description="Who sent the bill.")
    amount: float = Field(description="Amount still due.")
    currency: str = Field(description="Currency of the bill (ISO code).")
    due_date: str = Field(description="Date the bill is due, YYYY-MM-DD.")


class DueBills(BaseModel):
    """Unpaid bills, soonest due first."""

    bills: list[DueBill] = Field(description="Bills with an amount still due.")


class BillDetails(DueBill):
    """Full details of one bill."""

    category: str = Field(description="Kind of bill, e.g. 'utilities'.")
    customer_number: str = Field(description="The user's customer number at the biller.")
    amount_paid: float = Field(description="Amount already paid on this bill.")
    status: Literal["unpaid", "partially_paid", "paid"] = Field(description="Payment status.")


class BillPayment(BaseModel):
    """A payment made on a bill."""

    payment_id: str = Field(description="Identifier of the payment.")
    bill_id: str = Field(description="Bill that was paid.")
    account_id: str = Field(description="Account the money came from.")
    amount: float = Field(description="Amount paid.")
    currency: str = Field(description="Currency of the payment (ISO code).")
    remaining_due: float = Field(description="What is still due on the bill after this payment.")


class PaymentReceipt(BaseModel):
    """Receipt of a bill payment."""

    payment_id: str = Field(description="Identifier of the payment.")
    confirmation_number: str = Field(description="Biller's confirmation number for the payment.")
    biller_name: str = Field(description="Who was paid.")
    amount: float = Field(description="Amount paid.")
    currency: str = Field(description="Currency of the payment (ISO code).")
    paid_on: str = Field(description="Payment date, YYYY-MM-DD.")
    transaction_id: str = Field(description="The matching transaction on the account statement.")


class ExchangeRate(BaseModel):
    """Today's exchange rate."""

    from_currency: str = Field(description="Currency converted from (ISO code).")
    to_currency: str = Field(description="Currency converted to (ISO code).")
    rate: float = Field(description="Units of to_currency for one unit of from_currency.")


class ConvertedAmount(BaseModel):
    """An amount expressed in another currency."""

    converted_amount: float = Field(description="The amount in the target currency.")
    currency: str = Field(description="Target currency (ISO code).")
    rate: float = Field(description="Rate applied.")


class _Account(BaseModel):
    account_id: str
    nickname: str
    account_type: Literal["checking", "savings"]
    currency: str
    balance: float
    holds: float = 0.0


class _Txn(BaseModel):
    transaction_id: str
    account_id: str
    date: str
    description: str
    amount: float
    category: str
    counterparty: str


class _Bill(BaseModel):
    bill_id: str
    biller_name: str
    category: str
    currency: str
    amount_total: float
    amount_paid: float
    due_date: str
    customer_number: str


class BankingEnv(ToolEnvironment):
    category = "banking"
    description = "Bank accounts, balances, statements, transfers, bill payments and currency exchange."

    def setup(self) -> None:
        rng = self.rng
        # today's rates wobble around the base rates, per seed
        self.rates = {c: round(r * rng.uniform(0.98, 1.02), 4) if c != "USD" else 1.0 for c, r in _USD_RATE.items()}
        self.accounts: dict[str, _Account] = {}
        for account_type, nickname, currency in _ACCOUNTS:
            aid = self.new_id("ACC", 8)
            self.accounts[aid] = _Account(
                account_id=aid, nickname=nickname, account_type=account_type, currency=currency, balance=float(rng.randrange(800, 6000))
            )
        self.transactions: dict[str, _Txn] = {}
        for aid, account in self.accounts.items():
            if account.account_type == "savings":
                self._record(aid, "Interest payment", round(rng.uniform(1, 15), 2), "interest", "Bank", "2025-06-30")
                continue
            for _ in range(rng.randrange(4, 7)):
                merchant, category = rng.choice(_MERCHANTS)
                day = f"2025-06-{rng.randrange(1, 30):02d}"
                self._record(aid, f"Card payment {merchant}", -round(rng.uniform(3, 120), 2), category, merchant, day)
        self.bills: dict[str, _Bill] = {}
        for name, category, currency in _BILLERS:
            bid = self.new_id("BILL")
            total = round(rng.uniform(30, 180) if category != "rent" else rng.uniform(600, 1100), 2)
            self.bills[bid] = _Bill(
                bill_id=bid,
                biller_name=name,
                category=category,
                currency=currency,
                amount_total=total,
                amount_paid=total if category != "rent" and rng.random() < 0.2 else 0.0,
                due_date=f"2025-07-{rng.randrange(3, 28):02d}",
                customer_number=str(rng.randrange(10**7, 10**8)),
            )
        self.transfers: dict[str, Transfer] = {}
        self.payments: dict[str, PaymentReceipt] = {}

    def user_values(self) -> dict[str, list]:
        return {
            "amount": [25.0, 80.0, 150.0, 500.0],
            "month": ["2025-06", "2025-07"],
            "scheduled_date": ["2025-07-05", "2025-07-15"],
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """A transfer still scheduled to cancel (a completed one cannot be)."""
        if tool == "cancel_scheduled_transfer" and param == "transfer_id":
            transfer = self.transfers.get(value)
            return transfer is not None and transfer.status == "scheduled"
        return True

    # ------------------------------------------------------------------ helpers
    def _record(self, account_id: str, description: str, amount: float, category: str, counterparty: str, day: str | None = None) -> str:
        tid = self.new_id("TX", 8)
        self.transactions[tid] = _Txn(
            transaction_id=tid,
            account_id=account_id,
            date=day or _TODAY.isoformat(),
            description=description,
            amount=round(amount, 2),
            category=category,
            counterparty=counterparty,
        )
        return tid

    def _account(self, account_id: str) -> _Account:
        return self.lookup(self.accounts, account_id, "unknown_account", f"no account with id '{account_id}'")

    def _available(self, account: _Account) -> float:
        return round(account.balance - account.holds, 2)

    def _rate(self, from_currency: str, to_currency: str) -> float:
        return round(self.rates[to_currency] / self.rates[from_currency], 6)

    @staticmethod
    def _positive(amount: float) -> None:
        if amount <= 0:
            raise ToolError("invalid_amount", f"amount must be positive, got {amount}")

    def _bill(self, bill_id: str) -> _Bill:
        return self.lookup(self.bills, bill_id, "unknown_bill", f"no bill with id '{bill_id}'")

    def _due(self, bill: _Bill) -> float:
        return round(bill.amount_total - bill.amount_paid, 2)

    # ------------------------------------------------------------------ accounts
    @tool("Account management")
    def list_bank_accounts(self) -> AccountList:
        """List the user's bank accounts with their type and currency."""
        return AccountList(
            accounts=[AccountSummary(**a.model_dump(include=set(AccountSummary.model_fields))) for a in self.accounts.values()]
        )

    @tool("Account management")
    def get_account_balance(self, account_id: str) -> Balance:
        """Current balance and available balance of an account.

        Args:
            account_id: Identifier of the account, from list_bank_accounts.
        """
        a = self._account(account_id)
        return Balance(account_id=account_id, balance=round(a.balance, 2), available_balance=self._available(a), currency=a.currency)

    @tool("Account management")
    def get_account_statement(self, account_id: str, month: str | None = None) -> Statement:
        """Statement of an account: its transactions, optionally for one month, with totals in and out.

        Args:
            account_id: Identifier of the account.
            month: Only transactions of this month, YYYY-MM.
        """
        a = self._account(account_id)
        rows = [t for t in self.transactions.values() if t.account_id == account_id and (month is None or t.date.startswith(month + "-"))]
        rows.sort(key=lambda t: t.date)
        return Statement(
            account_id=account_id,
            currency=a.currency,
            transactions=[Transaction(**t.model_dump(include=set(Transaction.model_fields))) for t in rows],
            total_in=round(sum(t.amount for t in rows if t.amount > 0), 2),
            total_out=round(-sum(t.amount for t in rows if t.amount < 0), 2),
        )

    @tool("Account management")
    def get_transaction_details(self, transaction_id: str) -> TransactionDetails:
        """Full details of one transaction: category, counterparty and account.

        Args:
            transaction_id: Identifier of a transaction from a statement or receipt.
        """
        t = self.transactions.get(transaction_id)
        if t is None:
            raise ToolError("unknown_transaction", f"no transaction with id '{transaction_id}'")
        return TransactionDetails(**t.model_dump(), currency=self.accounts[t.account_id].currency)

    @tool("Account management")
    def check_sufficient_funds(self, account_id: str, amount: float) -> FundsCheck:
        """Check whether an account's available balance covers an amount before moving money.

        Args:
            account_id: Identifier of the account to pay from.
            amount: Amount needed, in the account's currency.
        """
        a = self._account(account_id)
        available = self._available(a)
        return FundsCheck(
            account_id=account_id,
            amount=amount,
            sufficient=available >= amount,
            available_balance=available,
            shortfall=round(max(0.0, amount - available), 2),
            currency=a.currency,
        )

    # ------------------------------------------------------------------ transfers
    @tool("Money transfer")
    def transfer_between_accounts(
        self, from_account_id: str, to_account_id: str, amount: float, scheduled_date: str | None = None
    ) -> Transfer:
        """Move money between two of the user's accounts, now or on a later date; converts currency when the accounts differ.

        Args:
            from_account_id: Account the money leaves.
            to_account_id: Account the money enters.
            amount: Amount to send, in the source account's currency.
            scheduled_date: Run the transfer on this later date (YYYY-MM-DD) instead of now; the amount is held until then.
        """
        src, dst = self._account(from_account_id), self._account(to_account_id)
        if src.account_id == dst.account_id:
            raise ToolError("same_account", "source and destination account are the same")
        self._positive(amount)
        when = _TODAY
        if scheduled_date is not None:
            try:
                when = date.fromisoformat(scheduled_date)
            except ValueError:
                raise ToolError("invalid_date", f"scheduled date '{scheduled_date}' is not YYYY-MM-DD") from None
            if when <= _TODAY:
                raise ToolError("invalid_date", f"a scheduled transfer must be after today ({_TODAY})")
        if amount > self._available(src):
            raise ToolError(
                "insufficient_funds", f"account '{from_account_id}' has {self._available(src)} {src.currency} available, {amount} needed"
            )
        rate = self._rate(src.currency, dst.currency)
        transfer = Transfer(
            transfer_id=self.new_id("TRF"),
            from_account_id=from_account_id,
            to_account_id=to_account_id,
            amount=amount,
            credited_amount=round(amount * rate, 2),
            exchange_rate=rate,
            scheduled_date=when.isoformat(),
            status="scheduled" if when > _TODAY else "completed",
        )
        if transfer.status == "scheduled":
            src.holds = round(src.holds + amount, 2)
        else:
            src.balance = round(src.balance - amount, 2)
            dst.balance = round(dst.balance + transfer.credited_amount, 2)
            self._record(src.account_id, f"Transfer to {dst.nickname}", -amount, "transfer", dst.account_id)
            self._record(dst.account_id, f"Transfer from {src.nickname}", transfer.credited_amount, "transfer", src.account_id)
        self.transfers[transfer.transfer_id] = transfer
        return transfer

    @tool("Money transfer")
    def get_transfer_status(self, transfer_id: str) -> Transfer:
        """Look up a transfer: accounts, amounts, date and status.

        Args:
            transfer_id: Identifier of a transfer returned by transfer_between_accounts.
        """
        return self.lookup(self.transfers, transfer_id, "unknown_transfer", f"no transfer with id '{transfer_id}'")

    @tool("Money transfer")
    def cancel_scheduled_transfer(self, transfer_id: str) -> Transfer:
        """Cancel a transfer that is scheduled for a later date and release the held money.

        Args:
            transfer_id: Identifier of the scheduled transfer.
        """
        transfer = self.get_transfer_status(transfer_id)
        if transfer.status != "scheduled":
            raise ToolError(
                "transfer_not_cancellable", f"transfer '{transfer_id}' is {transfer.status}; only scheduled transfers can be cancelled"
            )
        transfer.status = "cancelled"
        source = self.accounts[transfer.from_account_id]
        source.holds = round(source.holds - transfer.amount, 2)
        return transfer

    # ------------------------------------------------------------------ bills
    @tool("Bill payment")
    def list_due_bills(self) -> DueBills:
        """List the bills that still have an amount due, soonest first."""
        due = [b for b in self.bills.values() if self._due(b) > 0]
        due.sort(key=lambda b: b.due_date)
        return DueBills(
            bills=[
                DueBill(bill_id=b.bill_id, biller_name=b.biller_name, amount=self._due(b), currency=b.currency, due_date=b.due_date)
                for b in due
            ]
        )

    @tool("Bill payment")
    def get_bill_details(self, bill_id: str) -> BillDetails:
        """Full details of a bill: biller, customer number, amount due and paid, status.

        Args:
            bill_id: Identifier of a bill from list_due_bills.
        """
        b = self._bill(bill_id)
        due = self._due(b)
        return BillDetails(
            bill_id=b.bill_id,
            biller_name=b.biller_name,
            amount=due,
            currency=b.currency,
            due_date=b.due_date,
            category=b.category,
            customer_number=b.customer_number,
            amount_paid=b.amount_paid,
            status="paid" if due <= 0 else "partially_paid" if b.amount_paid > 0 else "unpaid",
        )

    @tool("Bill payment")
    def pay_bill(self, bill_id: str, account_id: str, amount: float) -> BillPayment:
        """Pay all or part of a bill from an account held in the bill's currency.

        Args:
            bill_id: Identifier of the bill to pay.
            account_id: Account to pay from.
            amount: Amount to pay, in the bill's currency; at most the amount due.
        """
        b, a = self._bill(bill_id), self._account(account_id)
        self._positive(amount)
        due = self._due(b)
        if due <= 0:
            raise ToolError("bill_already_paid", f"bill '{bill_id}' is already paid")
        if amount > due + 1e-9:
            raise ToolError("overpayment", f"only {due} {b.currency} is due on bill '{bill_id}', asked to pay {amount}")
        if a.currency != b.currency:
            raise ToolError(
                "currency_mismatch",
                f"bill '{bill_id}' is in {b.currency} but account '{account_id}' is in {a.currency}; pay from a {b.currency} account",
            )
        if amount > self._available(a):
            raise ToolError(
                "insufficient_funds", f"account '{account_id}' has {self._available(a)} {a.currency} available, {amount} needed"
            )
        a.balance = round(a.balance - amount, 2)
        b.amount_paid = round(b.amount_paid + amount, 2)
        tid = self._record(account_id, f"Bill payment {b.biller_name}", -amount, "bill", b.biller_name)
        payment_id = self.new_id("PAY")
        self.payments[payment_id] = PaymentReceipt(
            payment_id=payment_id,
            confirmation_number=self.new_id("CONF", 10),
            biller_name=b.biller_name,
            amount=amount,
            currency=b.currency,
            paid_on=_TODAY.isoformat(),
            transaction_id=tid,
        )
        return BillPayment(
            payment_id=payment_id, bill_id=bill_id, account_id=account_id, amount=amount, currency=b.currency, remaining_due=self._due(b)
        )

    @tool("Bill payment")
    def get_bill_payment_receipt(self, payment_id: str) -> PaymentReceipt:
        """Receipt of a bill payment with the biller's confirmation number.

        Args:
            payment_id: Identifier of a payment returned by pay_bill.
        """
        return self.lookup(self.payments, payment_id, "unknown_payment", f"no bill payment with id '{payment_id}'")

    # ------------------------------------------------------------------ currency
    @tool("Currency exchange")
    def get_exchange_rate(self, from_currency: Currency, to_currency: Currency) -> ExchangeRate:
        """Today's exchange rate between two currencies.

        Args:
            from_currency: Currency to convert from.
            to_currency: Currency to convert to.
        """
        return ExchangeRate(from_currency=from_currency, to_currency=to_currency, rate=self._rate(from_currency, to_currency))

    @tool("Currency exchange")
    def convert_currency_amount(self, amount: float, from_currency: Currency, to_currency: Currency) -> ConvertedAmount:
        """Convert an amount of money into another currency at today's rate.

        Args:
            amount: The amount to convert.
            from_currency: Currency of the given amount.
            to_currency: Currency to express it in.
        """
        rate = self._rate(from_currency, to_currency)
        return ConvertedAmount(converted_amount=round(amount * rate, 2), currency=to_currency, rate=rate)
