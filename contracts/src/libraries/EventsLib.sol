// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title EventsLib
/// @notice Events of the RewardDistributor.
library EventsLib {
    /// @notice Emitted when the anchorer posts the roots of an epoch.
    /// @param epoch The anchored epoch.
    /// @param claimsRoot The root of the tree of (account, cumulativeAmount) leaves.
    /// @param contributionsRoot The root of the tree of (sessionId, contentHash, contributor, points)
    /// leaves, or zero for an epoch without contributions.
    /// @param totalEntitled The sum of all cumulative entitlements in the claims tree, in base units.
    /// @param activatesAt The Unix time, in seconds, from which claims use `claimsRoot`.
    event EpochAnchored(
        uint64 indexed epoch,
        bytes32 claimsRoot,
        bytes32 contributionsRoot,
        uint256 totalEntitled,
        uint64 activatesAt
    );

    /// @notice Emitted when the guardian revokes a pending epoch, which can then be anchored again.
    /// @param epoch The revoked epoch.
    /// @param claimsRoot The revoked claims root.
    /// @param contributionsRoot The revoked contributions root.
    event EpochRevoked(uint64 indexed epoch, bytes32 claimsRoot, bytes32 contributionsRoot);

    /// @notice Emitted when tokens are minted for a claim.
    /// @param account The account that received the tokens.
    /// @param amount The amount minted by this claim, in base units.
    /// @param cumulativeAmount The account's cumulative entitlement in the claims tree, in base units.
    /// @param epoch The active epoch whose claims root verified the proof.
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount, uint64 epoch);

    /// @notice Emitted, before `Claimed`, when a claim signed by `account` is sent by a relayer.
    /// @param account The account that signed the claim.
    /// @param recipient The address that received the tokens.
    /// @param nonce The account's nonce that the signature used up.
    /// @param relayer The sender of the transaction.
    event ClaimRelayed(address indexed account, address indexed recipient, uint256 nonce, address relayer);
}
