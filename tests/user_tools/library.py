"""A small lending library: books are added, lent and returned."""

from typing_extensions import TypedDict


class BookRecord(TypedDict):
    book_id: str
    title: str
    author: str
    available: bool


class Loan(TypedDict):
    loan_id: str
    book_id: str
    member_name: str


class Library:
    def __init__(self, seed: int = 0, opening_books: int = 2):
        self.seed = seed
        self.books: dict[str, BookRecord] = {}
        self.loans: dict[str, Loan] = {}
        for i in range(opening_books):
            self.add_book(title=f"Opening title {i + seed}", author="Anon")

    def add_book(self, title: str, author: str) -> BookRecord:
        """Add a book to the catalogue.

        Args:
            title: The book's title.
            author: Who wrote it.
        """
        book_id = f"BK-{1000 + len(self.books)}"
        self.books[book_id] = BookRecord(book_id=book_id, title=title, author=author, available=True)
        return self.books[book_id]

    def lend_book(self, book_id: str, member_name: str) -> Loan:
        """Lend an available book to a member.

        Args:
            book_id: The catalogue id of the book.
            member_name: The member who borrows it.
        """
        book = self.books.get(book_id)
        if book is None:
            raise KeyError(f"no book {book_id}")
        if not book["available"]:
            raise ValueError(f"{book_id} is already lent")
        book["available"] = False
        loan_id = f"LN-{2000 + len(self.loans)}"
        self.loans[loan_id] = Loan(loan_id=loan_id, book_id=book_id, member_name=member_name)
        return self.loans[loan_id]

    def return_book(self, loan_id: str) -> BookRecord:
        """Close a loan: the book is available again.

        Args:
            loan_id: The loan to close.
        """
        loan = self.loans.pop(loan_id)
        book = self.books[loan["book_id"]]
        book["available"] = True
        return book

    def count_available(self) -> int:
        """How many books can be lent right now."""
        return sum(b["available"] for b in self.books.values())

    def user_values(self) -> dict:
        return {"member_name": ["Ada Lovelace", "Alan Turing"], "title": ["Dune", "Emma"], "author": ["Frank Herbert", "Jane Austen"]}
