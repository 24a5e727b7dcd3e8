// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ErrorsLib
/// @notice Custom errors of the RewardDistributor.
library ErrorsLib {
    /// @notice Thrown when the constructor receives the zero address for the token or a role holder, or
    /// a signed claim names the zero address as recipient.
    error ZeroAddress();

    /// @notice Thrown when the constructor receives an emission of zero tokens per epoch.
    error ZeroEmission();

    /// @notice Thrown when an anchor does not continue the epoch sequence.
    /// @param expected The only epoch that can be anchored now (`lastEpoch + 1`).
    /// @param given The epoch in the request.
    error NonConsecutiveEpoch(uint64 expected, uint64 given);

    /// @notice Thrown when an anchor comes while the latest epoch is still in its challenge period.
    /// @param epoch The latest anchored epoch.
    /// @param activatesAt The Unix time, in seconds, at which that epoch becomes active.
    error PreviousEpochPending(uint64 epoch, uint64 activatesAt);

    /// @notice Thrown when an anchor's total entitlement exceeds the cumulative emission.
    /// @param totalEntitled The sum of all cumulative entitlements in the claims tree, in base units.
    /// @param cumulativeEmission The emission of epochs 1 to `epoch` together, in base units.
    error EntitlementAboveEmission(uint256 totalEntitled, uint256 cumulativeEmission);

    /// @notice Thrown when a revocation names an epoch other than the latest anchored one.
    /// @param latest The latest anchored epoch (0 when none is anchored).
    /// @param given The epoch in the request.
    error NotLatestEpoch(uint64 latest, uint64 given);

    /// @notice Thrown when a revocation comes after the epoch's challenge period ended.
    /// @param epoch The epoch in the request.
    /// @param activatesAt The Unix time, in seconds, at which the epoch became active.
    error EpochAlreadyActive(uint64 epoch, uint64 activatesAt);

    /// @notice Thrown when a claim comes before any claims root is active.
    error NoActiveEpoch();

    /// @notice Thrown when a claim's proof does not lead from its leaf to the active claims root.
    error InvalidProof();

    /// @notice Thrown when a claim's cumulative amount does not exceed what the account already claimed.
    /// @param account The account in the claim.
    /// @param cumulativeAmount The cumulative amount in the claim, in base units.
    /// @param alreadyClaimed The amount the account has claimed so far, in base units.
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);

    /// @notice Thrown when a signed claim arrives after its deadline.
    /// @param deadline The last Unix time, in seconds, at which the signature was valid.
    error SignatureExpired(uint256 deadline);

    /// @notice Thrown when a signed claim's signature was not made by the claimed account.
    /// @param account The account in the claim.
    error InvalidSignature(address account);
}
