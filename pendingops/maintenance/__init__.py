"""Operations on what is stored: listing, exporting, verifying, removing orphans."""
