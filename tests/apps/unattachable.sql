-- An application Synthetics cannot attach to (issue 23's fixture 3): its events have no time
-- column, and their payload is an integer, which cannot carry the tag. `target check` must name
-- both problems by their place and exit 1, writing nothing.

CREATE SCHEMA legacy;

CREATE TABLE legacy.members (
    member_no integer PRIMARY KEY,
    name varchar(20) NOT NULL
);

CREATE TABLE legacy.clicks (
    click_no integer PRIMARY KEY,
    member_no integer NOT NULL REFERENCES legacy.members (member_no),
    what char(4) NOT NULL,
    payload integer NOT NULL
);
